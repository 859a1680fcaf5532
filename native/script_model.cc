#include "script_model.h"

#include <ATen/Parallel.h>
#include <caffe2/serialize/versions.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <sstream>

#include "error.h"
#include "forward_args.h"
#include "runtime.h"
#include "torch_dtypes.h"
#include "torch_errors.h"
#include "torch_log.h"
#include "torchscript_archive.h"

namespace torchnode {

struct ScriptModel::Impl {
  torch::jit::Module module;
  c10::Device device{c10::kCPU};
  ModelInfo info;
};

ScriptModel::ScriptModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ScriptModel::~ScriptModel() = default;
const ModelInfo& ScriptModel::info() const { return impl_->info; }

std::unique_ptr<ScriptModel> ScriptModel::Load(const std::string& path, const LoadOptions& options) {
  UseAddonWarningHandler();
  auto impl = std::make_unique<Impl>();
  impl->device = ResolveDevice(options.device);
  const uint64_t file_version =
      options.bytes ? CheckTorchScriptBytes(*options.bytes, path) : CheckTorchScriptArchive(path);
  try {
    if (options.bytes) {
      std::istringstream in(*options.bytes);
      impl->module = torch::jit::load(in, impl->device);
    } else {
      impl->module = torch::jit::load(path, impl->device);
    }
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
  // Before freezing folds them into the graph: a dtype error names the weights' dtype (src/torch/model.ts).
  std::vector<std::string>& weight_dtypes = impl->info.weight_dtypes;
  auto note_dtype = [&weight_dtypes](const at::Tensor& t) {
    const std::string name = c10::toString(t.scalar_type());
    DType d;
    const std::string label = FromScalarType(t.scalar_type(), &d) ? DTypeName(d) : name;
    if (std::find(weight_dtypes.begin(), weight_dtypes.end(), label) == weight_dtypes.end()) {
      weight_dtypes.push_back(label);
    }
  };
  for (const at::Tensor& p : impl->module.parameters()) note_dtype(p);
  for (const at::Tensor& b : impl->module.buffers()) note_dtype(b);

  const bool optimize = options.optimize < 0 ? impl->device.is_cpu() : options.optimize != 0;
  if (optimize) {
    try {
      // Freezing inlines the weights as constants, which lets optimize_for_inference fold
      // batch norms into convolutions and pick faster kernels. Outputs stay equal within float tolerance.
      // It runs operators (ATen's parallel kernels), so the addon runs it where the forwards run
      // (options.run_operators): from the libuv thread that loads, it left that thread an OpenMP team of its
      // own, and with more OpenMP threads than cores libgomp stops spinning between parallel regions in every
      // team (its throttled spin count): a small model's forward at 2 threads took 17-19 ms instead of 4-6 once
      // another model had run before its load. The step owns a copy of the module handle (no weights are
      // copied) and its result, never this frame.
      auto module = std::make_shared<torch::jit::Module>(impl->module);
      auto optimized = std::make_shared<torch::jit::Module>();
      // With the model's own thread count: the thread's OpenMP team is then the size its forwards use, and a
      // thread of the model's own never starts a team of the machine's size (see inference_thread.h).
      const int threads = options.threads;
      std::function<void()> step = [module, optimized, threads] {
        UseAddonWarningHandler();
        if (threads > 0 && at::get_num_threads() != threads) at::set_num_threads(threads);
        *optimized = torch::jit::optimize_for_inference(*module);
      };
      if (options.run_operators) {
        options.run_operators(step);
      } else {
        step();
      }
      impl->module = *optimized;
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
  info.inputs = DescribeArguments(fs);
  info.output_type = fs.returns().size() == 1 ? fs.returns()[0].type()->annotation_str() : "";
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
  // bfloat16 has no typed array and no dtype of the library's: float32 holds its every value exactly.
  if (t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  DType dtype;
  if (!FromScalarType(t.scalar_type(), &dtype)) {
    Fail("ERR_UNSUPPORTED_OUTPUT", std::string("The model returned a tensor of dtype ") +
                                       c10::toString(t.scalar_type()) + " at " + where +
                                       ", which JavaScript typed arrays cannot hold");
  }
  // The result's memory is handed to JavaScript, and outlives the forward: so it must belong to this tensor
  // alone, not to an input (the caller's buffer, freed after the forward), a model weight or another output.
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

ForwardResult ScriptModel::Forward(const std::vector<TensorView>& views) {
  std::vector<ArgValue> args;
  args.reserve(views.size());
  for (const TensorView& v : views) args.push_back(ArgValue::OfTensor(v));
  return Forward(args);
}

ForwardResult ScriptModel::Forward(const std::vector<ArgValue>& given) {
  const std::vector<TensorView> inputs = TensorViewsOf(given);
  UseAddonWarningHandler();
  try {
    c10::InferenceMode inference_mode;
    if (impl_->info.threads > 0 && at::get_num_threads() != impl_->info.threads) {
      at::set_num_threads(impl_->info.threads);
    }
    std::vector<c10::IValue> args =
        ToForwardArgs(impl_->module.get_method("forward").function().getSchema(), given, impl_->device);
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

}  // namespace torchnode
