// The LibTorch side of the addon: load a TorchScript module, run its forward, describe the runtime.
// Plain C++ with no N-API in it, so that a C++ test or benchmark can use it as it is; and no LibTorch
// types in this header, so that the N-API layer compiles without LibTorch's heavy headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace torchnode {

// An error to show the user: `code` is stable (tests and callers switch on it), `message` is one line,
// `details` is LibTorch's full text (without its C++ backtrace) where there is one.
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message, std::string details = "")
      : std::runtime_error(message), code_(std::move(code)), details_(std::move(details)) {}
  const std::string& code() const { return code_; }
  const std::string& details() const { return details_; }

 private:
  std::string code_;
  std::string details_;
};

enum class DType { Float32, Float64, Int32, Int64, UInt8, Bool };

const char* DTypeName(DType dtype);
bool ParseDType(const std::string& name, DType* out);
size_t ElementSize(DType dtype);

// An input tensor that borrows its memory: the caller keeps `data` alive and unchanged until Forward returns.
struct TensorView {
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t byte_length;
};

// An output tensor in contiguous CPU memory; `owner` keeps `data` alive (it holds LibTorch's tensor).
struct OutputTensor {
  std::string name;  // the key, for dict outputs
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t byte_length;
  std::shared_ptr<void> owner;
};

enum class OutputKind { Tensor, Tuple, List, Dict };
const char* OutputKindName(OutputKind kind);

struct ForwardResult {
  OutputKind kind = OutputKind::Tensor;
  std::vector<OutputTensor> tensors;
};

struct LoadOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 0;              // intra-op threads for this model's forwards; 0 leaves LibTorch's default
  int optimize = -1;            // freeze + optimize_for_inference: 1 on, 0 off, -1 on for CPU only
};

struct ModelInfo {
  std::string path;
  std::string device;  // "cpu" or "cuda:N"
  int threads = 0;
  bool optimized = false;
  std::string forward_schema;            // forward's signature, without self
  std::vector<std::string> input_names;  // forward's argument names, without self
};

struct RuntimeInfo {
  std::string libtorch_version;
  bool built_with_cuda = false;  // linked against a LibTorch that has CUDA kernels
  bool cuda_available = false;   // ... and a CUDA device is usable now
  int cuda_device_count = 0;
  std::string cuda_device_name;  // of device 0
  int default_threads = 0;       // LibTorch's intra-op threads on a fresh thread
};

RuntimeInfo GetRuntimeInfo();

class ScriptModel {
 public:
  // Reads, checks and loads a TorchScript file (blocking: call it off the JavaScript thread).
  static std::unique_ptr<ScriptModel> Load(const std::string& path, const LoadOptions& options);
  ~ScriptModel();

  // Runs forward in InferenceMode with the model's thread count. Call it from one thread at a time
  // (the addon runs every forward on its inference thread).
  ForwardResult Forward(const std::vector<TensorView>& inputs);

  const ModelInfo& info() const;

 private:
  struct Impl;
  explicit ScriptModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace torchnode
