// The LibTorch side of the addon: load a TorchScript module, run its forward, describe the runtime.
// Plain C++ with no N-API in it, so that a C++ test or benchmark can use it as it is; and no LibTorch
// types in this header, so that the N-API layer compiles without LibTorch's heavy headers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "error.h"
#include "tensor_types.h"

namespace torchnode {

struct LoadOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 0;              // intra-op threads for this model's forwards; 0 leaves LibTorch's default
  int optimize = -1;            // freeze + optimize_for_inference: 1 on, 0 off, -1 on for CPU only
  // Runs the load's optimisation step (LibTorch operators: freezing folds the weights by running them) and
  // returns when it is done, rethrowing its exception; empty: on the loading thread. The addon runs it on its
  // inference thread, where the forwards run (inference_thread.h: RunOnInferenceThread says why). The step owns
  // what it uses: a runner may give up waiting for it (the process exiting) and return by throwing.
  std::function<void(std::function<void()>)> run_operators;
  // When set, the model is read from these bytes (a file's contents), not from `path`, which then only names
  // it in messages and info.
  std::shared_ptr<const std::string> bytes;
};

// One of forward's arguments, from its schema.
struct ArgumentInfo {
  std::string name;
  std::string type;  // TorchScript's annotation: "Tensor", "int", "Optional[Tensor]", "List[int]"
  bool has_default = false;
  std::string default_value;  // as TorchScript prints it, when has_default
};

struct ModelInfo {
  std::string path;
  std::string device;  // "cpu" or "cuda:N"
  int threads = 0;
  bool optimized = false;
  std::string forward_schema;              // forward's signature, without self
  std::vector<std::string> input_names;    // forward's argument names, without self
  std::vector<ArgumentInfo> inputs;        // forward's arguments, without self
  std::string output_type;                 // forward's return type: "Tensor", "Dict[str, Tensor]", ...
  std::vector<std::string> weight_dtypes;  // the dtypes of the parameters and buffers (for messages)
};

struct RuntimeInfo {
  std::string libtorch_version;
  bool built_with_cuda = false;  // linked against a LibTorch that has CUDA kernels
  bool cuda_available = false;   // ... and a CUDA device is usable now
  int cuda_device_count = 0;
  std::string cuda_device_name;  // of device 0
  int default_threads = 0;       // LibTorch's intra-op threads on a fresh thread
};

// The CUDA part is probed once per process (runtime.h).
RuntimeInfo GetRuntimeInfo();

// How many times CUDA has been probed in this process: 0 before the first use, then 1 (tests check it).
int CudaProbeCount();

class ScriptModel {
 public:
  // Reads, checks and loads a TorchScript file (blocking: call it off the JavaScript thread, and off the
  // inference thread, where it runs its optimisation step and waits for it).
  static std::unique_ptr<ScriptModel> Load(const std::string& path, const LoadOptions& options);
  ~ScriptModel();

  // Runs forward in InferenceMode with the model's thread count. Call it from one thread at a time
  // (the addon runs every forward on its inference thread). The arguments are checked against forward's
  // schema first (forward_args.h: Error ERR_INVALID_ARGUMENT).
  ForwardResult Forward(const std::vector<ArgValue>& args);
  // The same, for a forward of tensors only.
  ForwardResult Forward(const std::vector<TensorView>& inputs);

  const ModelInfo& info() const;

 private:
  struct Impl;
  explicit ScriptModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace torchnode
