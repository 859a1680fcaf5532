// The model behind the C++ floor's timing loop: the addon's ScriptModel (native/script_model.h), or, for
// --onednn, LibTorch called directly, where the LibTorch it was built against has oneDNN Graph (LLGA) fusion.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "floor_inputs.h"
#include "floor_options.h"

namespace floor_bench {

// What the timing keeps of the last forward: the first output tensor's sum, first values and shape.
struct Summary {
  double sum = 0;
  std::vector<double> first;
  std::vector<int64_t> shape;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual void Forward() = 0;  // one timed forward
  virtual Summary Last() = 0;  // the last forward's first output
  virtual std::string Optimization() const = 0;
  virtual std::string Schema() const = 0;
  virtual std::vector<std::string> InputNames() const = 0;
};

// Throws InputError when --onednn cannot run here: this build has no oneDNN Graph fuser, or this LibTorch
// (`version`) no MKLDNN.
void RequireOneDnnGraph(const std::string& version, bool mkldnn);

// Loads o.model as the options ask (the timer runs around this: the JSON's load_ms).
std::unique_ptr<Model> LoadModel(const Options& o, const std::vector<Input>& inputs);

}  // namespace floor_bench
