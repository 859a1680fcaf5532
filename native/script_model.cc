#include "script_model.h"

#include <ATen/Parallel.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/versions.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace torchnode {

// ---------------------------------------------------------------------------------------------------
// dtypes

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Int32:
      return "int32";
    case DType::Int64:
      return "int64";
    case DType::UInt8:
      return "uint8";
    case DType::Bool:
      return "bool";
  }
  return "unknown";
}

bool ParseDType(const std::string& name, DType* out) {
  static const DType all[] = {DType::Float32, DType::Float64, DType::Int32, DType::Int64, DType::UInt8, DType::Bool};
  for (DType d : all) {
    if (name == DTypeName(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

size_t ElementSize(DType dtype) {
  switch (dtype) {
    case DType::Float64:
    case DType::Int64:
      return 8;
    case DType::Float32:
    case DType::Int32:
      return 4;
    case DType::UInt8:
    case DType::Bool:
      return 1;
  }
  return 1;
}

const char* OutputKindName(OutputKind kind) {
  switch (kind) {
    case OutputKind::Tensor:
      return "tensor";
    case OutputKind::Tuple:
      return "tuple";
    case OutputKind::List:
      return "list";
    case OutputKind::Dict:
      return "dict";
  }
  return "unknown";
}

namespace {

at::ScalarType ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return at::kFloat;
    case DType::Float64:
      return at::kDouble;
    case DType::Int32:
      return at::kInt;
    case DType::Int64:
      return at::kLong;
    case DType::UInt8:
      return at::kByte;
    case DType::Bool:
      return at::kBool;
  }
  return at::kFloat;
}

bool FromScalarType(at::ScalarType type, DType* out) {
  switch (type) {
    case at::kFloat:
      *out = DType::Float32;
      return true;
    case at::kDouble:
      *out = DType::Float64;
      return true;
    case at::kInt:
      *out = DType::Int32;
      return true;
    case at::kLong:
      *out = DType::Int64;
      return true;
    case at::kByte:
      *out = DType::UInt8;
      return true;
    case at::kBool:
      *out = DType::Bool;
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// error messages

std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t start = line.find_first_not_of(" \t\r");
    if (start != std::string::npos) lines.push_back(line.substr(start));
  }
  return lines;
}

// LibTorch's first message line; for an error raised inside TorchScript code that line only says
// "The following operation failed in the TorchScript interpreter.", and the real reason is the last line.
std::string Summarize(const std::string& text) {
  std::vector<std::string> lines = NonEmptyLines(text);
  if (lines.empty()) return "unknown LibTorch error";
  if (lines.front().rfind("The following operation failed in the TorchScript interpreter", 0) == 0) {
    return lines.back();
  }
  return lines.front();
}

std::string LibTorchVersion() { return TORCH_VERSION; }

// LibTorch's message without its C++ backtrace.
std::string MessageOf(const std::exception& e) {
  if (auto* c10e = dynamic_cast<const c10::Error*>(&e)) return c10e->what_without_backtrace();
  return e.what();
}

[[noreturn]] void Fail(const std::string& code, const std::string& message, const std::string& details = "") {
  throw Error(code, message, details);
}

// ---------------------------------------------------------------------------------------------------
// devices

// CUDA's driver API has a stable C ABI, so the device name needs no CUDA headers at build time.
std::string CudaDeviceName(int index) {
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (lib == nullptr) return "";
  using InitFn = int (*)(unsigned int);
  using DeviceGetFn = int (*)(int*, int);
  using GetNameFn = int (*)(char*, int, int);
  auto cu_init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto cu_device_get = reinterpret_cast<DeviceGetFn>(dlsym(lib, "cuDeviceGet"));
  auto cu_device_get_name = reinterpret_cast<GetNameFn>(dlsym(lib, "cuDeviceGetName"));
  char name[256] = {0};
  int device = 0;
  if (cu_init && cu_device_get && cu_device_get_name && cu_init(0) == 0 && cu_device_get(&device, index) == 0 &&
      cu_device_get_name(name, sizeof(name) - 1, device) == 0) {
    return name;
  }
  return "";
}

c10::Device ResolveDevice(const std::string& requested) {
  if (requested == "cpu") return c10::Device(c10::kCPU);
  const bool cuda = torch::cuda::is_available();
  if (requested == "auto") return cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  int index = -1;
  if (requested == "cuda") {
    index = 0;
  } else if (requested.rfind("cuda:", 0) == 0 && requested.size() > 5 && requested.size() < 9 &&
             requested.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::stoi(requested.substr(5));
  } else {
    Fail("ERR_INVALID_DEVICE", "Unknown device '" + requested + "': expected auto, cpu, cuda or cuda:N");
  }
  if (!cuda) {
#ifdef TORCH_NODE_WITH_CUDA
    Fail("ERR_CUDA_UNAVAILABLE",
         "Device '" + requested + "' was requested but CUDA is not available (no CUDA device or driver found)");
#else
    Fail("ERR_CUDA_UNAVAILABLE",
         "Device '" + requested + "' was requested but this addon was built against a CPU-only LibTorch " +
             LibTorchVersion() + "; rebuild it against a LibTorch with CUDA (LIBTORCH_DIR or TORCH_PYTHON)");
#endif
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    Fail("ERR_INVALID_DEVICE",
         "Device '" + requested + "' does not exist: this machine has " + std::to_string(count) + " CUDA device(s)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// ---------------------------------------------------------------------------------------------------
// loading

bool StartsWith(const std::string& bytes, const char* prefix, size_t n) {
  return bytes.size() >= n && std::memcmp(bytes.data(), prefix, n) == 0;
}

const char kExportHint[] =
    "Export a TorchScript model with torch.jit.trace or torch.jit.script and save it with torch.jit.save "
    "(for the workshop's FoodClassifier checkpoints, this project's scripts/export_model.py --checkpoint FILE "
    "--class-mapping class_mapping.json --vocab vocab.txt --out DIR does it)";

// Tells a TorchScript archive from the other things people pass as "best_model.pth", before LibTorch
// answers with a less helpful message. Returns the archive's file format version.
uint64_t CheckTorchScriptArchive(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) Fail("ERR_MODEL_NOT_FOUND", "Model file not found: " + path);
  if (!S_ISREG(st.st_mode)) Fail("ERR_MODEL_NOT_FOUND", "Model path is not a regular file: " + path);
  std::ifstream in(path, std::ios::binary);
  std::string head(4, '\0');
  in.read(&head[0], 4);
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.empty()) Fail("ERR_NOT_TORCHSCRIPT", path + " is empty, not a TorchScript file");
  if (static_cast<unsigned char>(head[0]) == 0x80) {
    Fail("ERR_NOT_TORCHSCRIPT", path + " is a Python pickle in the legacy torch.save format (a checkpoint or " +
                                    "state_dict), not a TorchScript module. " + kExportHint);
  }
  if (!StartsWith(head, "PK\x03\x04", 4)) {
    Fail("ERR_NOT_TORCHSCRIPT", path + " is not a TorchScript file (TorchScript files are zip archives)");
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("data.pkl") && !reader.hasRecord("constants.pkl")) {
      Fail("ERR_NOT_TORCHSCRIPT", path + " is a checkpoint saved with torch.save (such as a state_dict, or a dict " +
                                      "holding model_state_dict), not a TorchScript module. " + kExportHint);
    }
    return reader.version();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string text = MessageOf(e);
    if (text.find("maximum supported version") != std::string::npos) {
      Fail("ERR_LIBTORCH_TOO_OLD",
           path + " was saved by a newer PyTorch than this addon's LibTorch " + LibTorchVersion() + " can read (" +
               Summarize(text) + "). Rebuild the addon against a newer LibTorch (LIBTORCH_DIR or TORCH_PYTHON)",
           text);
    }
    Fail("ERR_MODEL_CORRUPT", "Cannot read " + path + " (truncated or corrupt?): " + Summarize(text), text);
  }
}

bool IsUnknownToThisLibTorch(const std::string& text) {
  for (const char* marker : {"Unknown builtin op", "Unknown type name", "Unknown attribute", "unknown builtin op",
                             "Could not find schema", "is not a member of"}) {
    if (text.find(marker) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// ScriptModel

struct ScriptModel::Impl {
  torch::jit::Module module;
  c10::Device device{c10::kCPU};
  ModelInfo info;
};

ScriptModel::ScriptModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ScriptModel::~ScriptModel() = default;
const ModelInfo& ScriptModel::info() const { return impl_->info; }

std::unique_ptr<ScriptModel> ScriptModel::Load(const std::string& path, const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->device = ResolveDevice(options.device);
  const uint64_t file_version = CheckTorchScriptArchive(path);
  try {
    impl->module = torch::jit::load(path, impl->device);
  } catch (const std::exception& e) {
    // c10::Error, or torch::jit::ErrorReport (a plain std::exception) when the code in the archive
    // does not compile, as with an operator this LibTorch does not have.
    const std::string text = MessageOf(e);
    if (IsUnknownToThisLibTorch(text)) {
      Fail("ERR_LIBTORCH_TOO_OLD",
           path + " needs a newer LibTorch than this addon's " + LibTorchVersion() + " (file format version " +
               std::to_string(file_version) + "; this LibTorch reads up to " +
               std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion) + "): " + Summarize(text) +
               ". Load it with a LibTorch at least as new as the PyTorch that saved it (rebuild with LIBTORCH_DIR "
               "or TORCH_PYTHON), or export it again with PyTorch " +
               LibTorchVersion(),
           text);
    }
    Fail("ERR_MODEL_LOAD", "Cannot load " + path + ": " + Summarize(text), text);
  }
  if (impl->module.find_method("forward") == c10::nullopt) {
    Fail("ERR_MODEL_LOAD", path + " has no forward method");
  }
  impl->module.eval();

  const bool optimize = options.optimize < 0 ? impl->device.is_cpu() : options.optimize != 0;
  if (optimize) {
    try {
      // Freezing inlines the weights as constants, which lets optimize_for_inference fold
      // batch norms into convolutions and pick faster kernels. Outputs stay equal within float tolerance.
      impl->module = torch::jit::optimize_for_inference(impl->module);
    } catch (const std::exception& e) {
      const std::string text = MessageOf(e);
      Fail("ERR_MODEL_OPTIMIZE",
           "Cannot optimise " + path + " for inference (load it with optimize: false): " + Summarize(text), text);
    }
  }

  ModelInfo& info = impl->info;
  info.path = path;
  info.device = impl->device.str();
  info.threads = options.threads;
  info.optimized = optimize;
  // "forward(Tensor image, Tensor input_ids) -> Tensor": the schema without `self`, whose type name is
  // mangled by freezing and means nothing to the caller.
  const c10::FunctionSchema& fs = impl->module.get_method("forward").function().getSchema();
  std::ostringstream schema;
  schema << "forward(";
  for (size_t i = 1; i < fs.arguments().size(); ++i) {
    schema << (i > 1 ? ", " : "") << fs.arguments()[i];
    info.input_names.push_back(fs.arguments()[i].name());
  }
  schema << ") -> ";
  if (fs.returns().size() == 1) {
    schema << fs.returns()[0].type()->str();
  } else {
    schema << "(";
    for (size_t i = 0; i < fs.returns().size(); ++i) schema << (i ? ", " : "") << fs.returns()[i].type()->str();
    schema << ")";
  }
  info.forward_schema = schema.str();
  return std::unique_ptr<ScriptModel>(new ScriptModel(std::move(impl)));
}

namespace {

bool Overlaps(const at::Tensor& t, const std::vector<TensorView>& inputs) {
  const char* begin = static_cast<const char*>(t.storage().data());
  const char* end = begin + t.storage().nbytes();
  for (const TensorView& in : inputs) {
    const char* in_begin = static_cast<const char*>(in.data);
    if (in.byte_length > 0 && begin < in_begin + in.byte_length && in_begin < end) return true;
  }
  return false;
}

OutputTensor ToOutput(const c10::IValue& value, const std::string& where, const std::vector<TensorView>& inputs) {
  if (!value.isTensor()) {
    Fail("ERR_UNSUPPORTED_OUTPUT",
         "The model returned " + value.tagKind() + " at " + where +
             "; supported outputs are a tensor, a tuple or list of tensors, or a dict of string to tensor");
  }
  at::Tensor t = value.toTensor().to(c10::kCPU).contiguous();
  if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  DType dtype;
  if (!FromScalarType(t.scalar_type(), &dtype)) {
    Fail("ERR_UNSUPPORTED_OUTPUT", std::string("The model returned a tensor of dtype ") +
                                       c10::toString(t.scalar_type()) + " at " + where +
                                       ", which JavaScript typed arrays cannot hold");
  }
  // The result's memory is handed to JavaScript, so it must belong to this tensor alone: not to an
  // input (JS memory the caller owns), to a model weight, or to another output.
  if (t.storage().use_count() > 1 || Overlaps(t, inputs) || t.is_sparse() || t.is_mkldnn()) t = t.clone();
  OutputTensor out;
  out.dtype = dtype;
  out.shape.assign(t.sizes().begin(), t.sizes().end());
  out.data = t.data_ptr();
  out.byte_length = t.nbytes();
  out.owner = std::make_shared<at::Tensor>(t);
  return out;
}

}  // namespace

ForwardResult ScriptModel::Forward(const std::vector<TensorView>& inputs) {
  static const int64_t kEmpty = 0;
  try {
    c10::InferenceMode inference_mode;
    if (impl_->info.threads > 0 && at::get_num_threads() != impl_->info.threads) {
      at::set_num_threads(impl_->info.threads);
    }
    std::vector<c10::IValue> args;
    args.reserve(inputs.size());
    for (const TensorView& in : inputs) {
      void* data = in.byte_length > 0 ? const_cast<void*>(in.data) : const_cast<int64_t*>(&kEmpty);
      at::Tensor t = at::from_blob(data, in.shape, at::TensorOptions().dtype(ToScalarType(in.dtype)));
      if (!impl_->device.is_cpu()) t = t.to(impl_->device);
      args.emplace_back(std::move(t));
    }
    c10::IValue output = impl_->module.forward(std::move(args));

    ForwardResult result;
    if (output.isTensor()) {
      result.kind = OutputKind::Tensor;
      result.tensors.push_back(ToOutput(output, "the output", inputs));
    } else if (output.isTuple() || output.isList()) {
      result.kind = output.isTuple() ? OutputKind::Tuple : OutputKind::List;
      std::vector<c10::IValue> items =
          output.isTuple() ? output.toTupleRef().elements().vec() : output.toListRef().vec();
      for (size_t i = 0; i < items.size(); ++i) {
        result.tensors.push_back(ToOutput(items[i], "output element " + std::to_string(i), inputs));
      }
    } else if (output.isGenericDict()) {
      result.kind = OutputKind::Dict;
      for (const auto& entry : output.toGenericDict()) {
        if (!entry.key().isString()) {
          Fail("ERR_UNSUPPORTED_OUTPUT",
               "The model returned a dict with " + entry.key().tagKind() + " keys; only string keys are supported");
        }
        const std::string key = entry.key().toStringRef();
        result.tensors.push_back(ToOutput(entry.value(), "output key '" + key + "'", inputs));
        result.tensors.back().name = key;
      }
    } else {
      ToOutput(output, "the top level", inputs);  // throws the unsupported-output error
    }
    if (!impl_->device.is_cpu()) torch::cuda::synchronize(impl_->device.index());
    return result;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string text = MessageOf(e);
    Fail("ERR_FORWARD", Summarize(text), text);
  }
}

RuntimeInfo GetRuntimeInfo() {
  RuntimeInfo info;
  info.libtorch_version = LibTorchVersion();
#ifdef TORCH_NODE_WITH_CUDA
  info.built_with_cuda = true;
#endif
  info.cuda_available = torch::cuda::is_available();
  info.cuda_device_count = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (info.cuda_available) info.cuda_device_name = CudaDeviceName(0);
  info.default_threads = at::get_num_threads();
  return info;
}

}  // namespace torchnode
