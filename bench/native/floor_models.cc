// The models behind the C++ floor's timing loop (floor_models.h): the addon's ScriptModel, or LibTorch called
// directly for oneDNN Graph fusion.
#include "floor_models.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "floor_errors.h"

#if defined(FLOOR_WITH_ONEDNN_GRAPH) && FLOOR_WITH_ONEDNN_GRAPH && \
    __has_include(<torch/csrc/jit/passes/onednn_graph_fuser.h>)
#include <torch/csrc/jit/passes/onednn_graph_fuser.h>
#include <torch/script.h>
#define FLOOR_HAS_LLGA 1
#else
#define FLOOR_HAS_LLGA 0
#endif

namespace floor_bench {
namespace {

double ValueAt(const torchnode::OutputTensor& t, size_t i) {
  switch (t.dtype) {
    case torchnode::DType::Float32:
      return static_cast<const float*>(t.data)[i];
    case torchnode::DType::Float64:
      return static_cast<const double*>(t.data)[i];
    case torchnode::DType::Int32:
      return static_cast<const int32_t*>(t.data)[i];
    case torchnode::DType::Int64:
      return static_cast<double>(static_cast<const int64_t*>(t.data)[i]);
    case torchnode::DType::UInt8:
      return static_cast<const uint8_t*>(t.data)[i];
    case torchnode::DType::Bool:
      return static_cast<const bool*>(t.data)[i] ? 1 : 0;
  }
  return 0;
}

Summary Summarize(const torchnode::OutputTensor& out) {
  Summary s;
  const size_t n = out.byte_length / torchnode::ElementSize(out.dtype);
  for (size_t i = 0; i < n; ++i) s.sum += ValueAt(out, i);
  for (size_t i = 0; i < n && i < 8; ++i) s.first.push_back(ValueAt(out, i));
  s.shape = out.shape;
  return s;
}

Summary Summarize(const at::Tensor& tensor) {
  at::Tensor t = tensor.is_mkldnn() ? tensor.to_dense() : tensor;
  t = t.to(at::kDouble).contiguous();
  Summary s;
  const double* data = t.data_ptr<double>();
  const size_t n = static_cast<size_t>(t.numel());
  for (size_t i = 0; i < n; ++i) s.sum += data[i];
  for (size_t i = 0; i < n && i < 8; ++i) s.first.push_back(data[i]);
  s.shape.assign(t.sizes().begin(), t.sizes().end());
  return s;
}

// The addon's path: torchnode::ScriptModel, as the addon loads and runs it (freeze + optimize_for_inference
// on the CPU unless --no-optimize; each forward wraps the inputs with from_blob and returns the outputs in
// contiguous CPU memory).
class WrapperModel : public Model {
 public:
  WrapperModel(const Options& o, const std::vector<Input>& inputs) {
    for (const Input& in : inputs) {
      views_.push_back({in.dtype, std::vector<int64_t>(in.tensor.sizes().begin(), in.tensor.sizes().end()),
                        in.tensor.data_ptr(), in.tensor.nbytes()});
    }
    torchnode::LoadOptions load;
    load.device = "cpu";
    load.threads = o.threads;
    load.optimize = o.optimize ? 1 : 0;
    model_ = torchnode::ScriptModel::Load(o.model, load);
  }
  void Forward() override { result_ = model_->Forward(views_); }
  Summary Last() override {
    if (result_.tensors.empty()) throw InputError("the model returned no tensor");
    return Summarize(result_.tensors.front());
  }
  std::string Optimization() const override {
    return model_->info().optimized ? "freeze+optimize_for_inference" : "none";
  }
  std::string Schema() const override { return model_->info().forward_schema; }
  std::vector<std::string> InputNames() const override { return model_->info().input_names; }

 private:
  std::vector<torchnode::TensorView> views_;
  std::unique_ptr<torchnode::ScriptModel> model_;
  torchnode::ForwardResult result_;
};

#if FLOOR_HAS_LLGA
// oneDNN Graph (LLGA) fusion, called the way PyTorch documents it: torch::jit::load, eval, torch::jit::freeze
// (not optimize_for_inference, whose MKLDNN-prepacked graph the LLGA fuser rejects: in torch 2.15 the
// forward then fails with "vector::_M_range_check"), forwards in c10::InferenceMode. The fusion happens
// in the profiling executor after the first forwards (hence the warm-up).
class OneDnnGraphModel : public Model {
 public:
  OneDnnGraphModel(const Options& o, const std::vector<Input>& inputs) : freeze_(o.optimize) {
    torch::jit::RegisterLlgaFuseGraph::setEnabled(true);
    for (const Input& in : inputs) args_.emplace_back(in.tensor);
    try {
      module_ = torch::jit::load(o.model, c10::Device(c10::kCPU));
      module_.eval();
      if (freeze_) module_ = torch::jit::freeze(module_);
    } catch (const c10::Error& e) {
      throw InputError("cannot load " + o.model + ": " + e.what_without_backtrace());
    }
    const c10::FunctionSchema& fs = module_.get_method("forward").function().getSchema();
    std::ostringstream schema;
    schema << "forward(";
    for (size_t i = 1; i < fs.arguments().size(); ++i) {
      schema << (i > 1 ? ", " : "") << fs.arguments()[i];
      names_.push_back(fs.arguments()[i].name());
    }
    schema << ")";
    schema_ = schema.str();
  }
  void Forward() override {
    c10::InferenceMode guard;
    std::vector<c10::IValue> args = args_;
    c10::IValue out = module_.forward(std::move(args));
    if (out.isTuple()) out = out.toTupleRef().elements().at(0);
    if (out.isList()) out = out.toListRef().at(0);
    if (out.isGenericDict()) out = out.toGenericDict().begin()->value();
    if (!out.isTensor()) throw InputError("the model's first output is " + out.tagKind() + ", not a tensor");
    last_ = out.toTensor();
  }
  Summary Last() override { return Summarize(last_); }
  std::string Optimization() const override { return freeze_ ? "freeze" : "none"; }
  std::string Schema() const override { return schema_; }
  std::vector<std::string> InputNames() const override { return names_; }

 private:
  bool freeze_;
  std::vector<c10::IValue> args_;
  torch::jit::Module module_;
  at::Tensor last_;
  std::string schema_;
  std::vector<std::string> names_;
};
#endif

}  // namespace

void RequireOneDnnGraph(const std::string& version, bool mkldnn) {
#if !FLOOR_HAS_LLGA
  throw InputError("--onednn: this LibTorch " + version +
                   " has no oneDNN Graph (LLGA) fuser (libtorch_cpu exports no torch::jit::fuser::onednn::fuseGraph, "
                   "or its header is missing), so floor was built without it; use a LibTorch that has it, "
                   "e.g. a pip torch 2.x: TORCH_PYTHON=/path/to/python node bench/build-floor.mjs --out OTHER");
#endif
  if (!mkldnn) throw InputError("--onednn: this LibTorch " + version + " was built without MKLDNN/oneDNN");
}

std::unique_ptr<Model> LoadModel(const Options& o, const std::vector<Input>& inputs) {
  std::unique_ptr<Model> model;
#if FLOOR_HAS_LLGA
  if (o.onednn) model = std::make_unique<OneDnnGraphModel>(o, inputs);
#endif
  if (!model) model = std::make_unique<WrapperModel>(o, inputs);
  return model;
}

}  // namespace floor_bench
