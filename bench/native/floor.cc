// The benchmark's floor: a plain C++ program that runs a TorchScript model through the addon's own LibTorch
// layer (native/script_model.{h,cc}: load, eval, freeze + optimize_for_inference on CPU, forward in
// c10::InferenceMode with a set thread count), with no Node.js and no N-API around it. Whatever the addon
// adds on top of this (N-API, its inference thread, promises) is the difference from this program's times.
//
//   floor --model FILE --inputs DIR [--threads 2] [--warmup 5] [--iters 30] [--no-optimize] [--onednn]
//
// DIR holds spec.json, {"inputs": [{"name", "dtype", "shape", "file"}, ...]}, and one file of raw
// little-endian C-contiguous data per input (dtypes float32, float64, int32, int64). The inputs are made
// once, before any timing (at::from_blob + clone); each timed forward is one call of
// ScriptModel::Forward, measured with std::chrono::steady_clock. stdout gets one JSON line at the end;
// progress goes to stderr. Exit 1 on a model or input error, 2 on a usage error.
//
// --onednn turns on oneDNN Graph (LLGA) fusion. That path calls LibTorch directly, not through the addon's
// layer, because it needs torch::jit::freeze alone: LLGA fails on optimize_for_inference's graph (torch 2.15:
// "vector::_M_range_check" at the first forward), and PyTorch's recipe for it is freeze then fuse. So with
// --onednn, "optimized" means frozen (the JSON's "optimization" says which: freeze+optimize_for_inference,
// freeze, none). bench/build-floor.mjs defines FLOOR_WITH_ONEDNN_GRAPH=1 when the LibTorch it builds against
// has the LLGA fuser; without it (Debian's LibTorch 1.13), --onednn fails with a message that says so.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "script_model.h"

#if defined(FLOOR_WITH_ONEDNN_GRAPH) && FLOOR_WITH_ONEDNN_GRAPH && \
    __has_include(<torch/csrc/jit/passes/onednn_graph_fuser.h>)
#include <torch/csrc/jit/passes/onednn_graph_fuser.h>
#include <torch/script.h>
#define FLOOR_HAS_LLGA 1
#else
#define FLOOR_HAS_LLGA 0
#endif

namespace {

// ---------------------------------------------------------------------------------------------------
// errors

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------------
// a small JSON reader, enough for spec.json

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double number = 0;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* get(const std::string& key) const {
    for (const auto& m : members) {
      if (m.first == key) return &m.second;
    }
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  Json parseDocument() {
    Json v = parseValue();
    skipSpace();
    if (i_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  const std::string& s_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError("invalid JSON at byte " + std::to_string(i_) + ": " + what);
  }
  void skipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool consume(const char* word) {
    const size_t n = std::char_traits<char>::length(word);
    if (s_.compare(i_, n, word) == 0) {
      i_ += n;
      return true;
    }
    return false;
  }

  Json parseValue() {
    skipSpace();
    if (i_ >= s_.size()) fail("unexpected end");
    Json v;
    const char c = s_[i_];
    if (c == '{') {
      v.kind = Json::Object;
      ++i_;
      skipSpace();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        skipSpace();
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
        std::string key = parseString();
        skipSpace();
        if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
        ++i_;
        v.members.emplace_back(std::move(key), parseValue());
        skipSpace();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return v;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++i_;
      skipSpace();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.items.push_back(parseValue());
        skipSpace();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return v;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      v.str = parseString();
      return v;
    }
    if (consume("true")) {
      v.kind = Json::Bool;
      v.b = true;
      return v;
    }
    if (consume("false")) {
      v.kind = Json::Bool;
      return v;
    }
    if (consume("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) {
      const char* begin = s_.c_str() + i_;
      char* end = nullptr;
      v.kind = Json::Number;
      v.number = std::strtod(begin, &end);
      if (end == begin) fail("bad number");
      i_ += static_cast<size_t>(end - begin);
      return v;
    }
    fail(std::string("unexpected character '") + c + "'");
  }

  std::string parseString() {
    ++i_;  // the opening quote
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) break;
      const char e = s_[i_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("bad \\u escape");
          const unsigned code = static_cast<unsigned>(std::stoul(s_.substr(i_, 4), nullptr, 16));
          i_ += 4;
          // Enough for file names: encode the code point as UTF-8 (no surrogate pairs).
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default:
          out += e;  // \" \\ \/
      }
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;  // the closing quote
    return out;
  }
};

// ---------------------------------------------------------------------------------------------------
// inputs

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct Input {
  std::string name;
  torchnode::DType dtype;
  at::Tensor tensor;  // owns the data, in LibTorch's (aligned) memory
};

at::ScalarType ScalarTypeOf(torchnode::DType dtype) {
  switch (dtype) {
    case torchnode::DType::Float32:
      return at::kFloat;
    case torchnode::DType::Float64:
      return at::kDouble;
    case torchnode::DType::Int32:
      return at::kInt;
    case torchnode::DType::Int64:
      return at::kLong;
    case torchnode::DType::UInt8:
      return at::kByte;
    case torchnode::DType::Bool:
      return at::kBool;
  }
  return at::kFloat;
}

std::vector<Input> ReadInputs(const std::string& dir) {
  const std::string spec_path = dir + "/spec.json";
  const Json spec = [&] {
    try {
      return JsonParser(ReadFile(spec_path)).parseDocument();
    } catch (const InputError& e) {
      throw InputError(spec_path + ": " + e.what());
    }
  }();
  const Json* list = spec.get("inputs");
  if (spec.kind != Json::Object || list == nullptr || list->kind != Json::Array) {
    throw InputError(spec_path + ": expected {\"inputs\": [{\"name\", \"dtype\", \"shape\", \"file\"}, ...]}");
  }
  std::vector<Input> inputs;
  for (size_t i = 0; i < list->items.size(); ++i) {
    const Json& item = list->items[i];
    const std::string where = spec_path + ": inputs[" + std::to_string(i) + "]";
    const Json* name = item.get("name");
    const Json* dtype = item.get("dtype");
    const Json* shape = item.get("shape");
    const Json* file = item.get("file");
    if (dtype == nullptr || dtype->kind != Json::String || shape == nullptr || shape->kind != Json::Array ||
        file == nullptr || file->kind != Json::String) {
      throw InputError(where + " needs \"dtype\" (a string), \"shape\" (an array) and \"file\" (a string)");
    }
    Input input;
    input.name = name != nullptr && name->kind == Json::String ? name->str : "input" + std::to_string(i);
    static const char* kSupported[] = {"float32", "float64", "int32", "int64"};
    bool supported = false;
    for (const char* s : kSupported) supported = supported || dtype->str == s;
    if (!supported || !torchnode::ParseDType(dtype->str, &input.dtype)) {
      throw InputError(where + " has dtype '" + dtype->str + "'; expected float32, float64, int32 or int64");
    }
    std::vector<int64_t> sizes;
    int64_t count = 1;
    for (const Json& d : shape->items) {
      if (d.kind != Json::Number || d.number < 0 || d.number != std::floor(d.number)) {
        throw InputError(where + " has a shape that is not a list of non-negative integers");
      }
      sizes.push_back(static_cast<int64_t>(d.number));
      count *= sizes.back();
    }
    const std::string path = file->str.empty() || file->str[0] == '/' ? file->str : dir + "/" + file->str;
    std::string bytes = ReadFile(path);
    const size_t expected = static_cast<size_t>(count) * torchnode::ElementSize(input.dtype);
    if (bytes.size() != expected) {
      throw InputError(path + " holds " + std::to_string(bytes.size()) + " bytes, but " + input.name + " (" +
                       dtype->str + ", " + std::to_string(count) + " elements) needs " + std::to_string(expected));
    }
    // Copied into LibTorch's own memory: aligned as LibTorch aligns every tensor, and independent of `bytes`.
    input.tensor = at::from_blob(bytes.data(), sizes, at::TensorOptions().dtype(ScalarTypeOf(input.dtype))).clone();
    inputs.push_back(std::move(input));
  }
  if (inputs.empty()) throw InputError(spec_path + " lists no inputs");
  return inputs;
}

// ---------------------------------------------------------------------------------------------------
// output

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

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// ---------------------------------------------------------------------------------------------------
// command line

struct Options {
  std::string model;
  std::string inputs;
  int threads = 2;
  int warmup = 5;
  int iters = 30;
  bool optimize = true;
  bool onednn = false;
  // Run the forwards on a second thread, as the addon does on its inference thread (to tell the cost of
  // that from the cost of Node).
  bool in_thread = false;
};

const char kUsage[] =
    "usage: floor --model FILE --inputs DIR [--threads 2] [--warmup 5] [--iters 30] [--no-optimize] [--onednn]\n"
    "             [--in-thread]   (forwards on a thread of their own, as the addon runs them)";

int ParseInt(const std::string& flag, const std::string& value, int min) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || n < min) {
    throw UsageError(flag + " expects an integer >= " + std::to_string(min) + ", got '" + value + "'");
  }
  return n;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " expects a value");
      return argv[++i];
    };
    if (arg == "--model") {
      o.model = value();
    } else if (arg == "--inputs") {
      o.inputs = value();
    } else if (arg == "--threads") {
      o.threads = ParseInt(arg, value(), 1);
    } else if (arg == "--warmup") {
      o.warmup = ParseInt(arg, value(), 0);
    } else if (arg == "--iters") {
      o.iters = ParseInt(arg, value(), 1);
    } else if (arg == "--no-optimize") {
      o.optimize = false;
    } else if (arg == "--onednn") {
      o.onednn = true;
    } else if (arg == "--in-thread") {
      o.in_thread = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage << "\n";
      std::exit(0);
    } else {
      throw UsageError("unknown argument '" + arg + "'");
    }
  }
  if (o.model.empty() || o.inputs.empty()) throw UsageError("--model and --inputs are required");
  return o;
}

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// What the timing keeps of the last forward: the first output tensor's sum, first values and shape.
struct Summary {
  double sum = 0;
  std::vector<double> first;
  std::vector<int64_t> shape;
};

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

// The model behind the timing loop: the addon's ScriptModel, or (for --onednn) LibTorch called directly.
class Model {
 public:
  virtual ~Model() = default;
  virtual void Forward() = 0;  // one timed forward
  virtual Summary Last() = 0;  // the last forward's first output
  virtual std::string Optimization() const = 0;
  virtual std::string Schema() const = 0;
  virtual std::vector<std::string> InputNames() const = 0;
};

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

int Run(const Options& o) {
  const std::string version = torchnode::GetRuntimeInfo().libtorch_version;
  const bool mkldnn = at::hasMKLDNN();
#if !FLOOR_HAS_LLGA
  if (o.onednn) {
    throw InputError("--onednn: this LibTorch " + version +
                     " has no oneDNN Graph (LLGA) fuser (libtorch_cpu exports no torch::jit::fuser::onednn::fuseGraph, "
                     "or its header is missing), so floor was built without it; use a LibTorch that has it, "
                     "e.g. a pip torch 2.x: TORCH_PYTHON=/path/to/python node bench/build-floor.mjs --out OTHER");
  }
#endif
  if (o.onednn && !mkldnn) throw InputError("--onednn: this LibTorch " + version + " was built without MKLDNN/oneDNN");
  at::set_num_threads(o.threads);

  const std::vector<Input> inputs = ReadInputs(o.inputs);
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Model> model;
#if FLOOR_HAS_LLGA
  if (o.onednn) model = std::make_unique<OneDnnGraphModel>(o, inputs);
#endif
  if (!model) model = std::make_unique<WrapperModel>(o, inputs);
  const double load_ms = MsSince(start);
  std::cerr << "floor: LibTorch " << version << ", " << o.threads << " thread(s), " << model->Schema() << ", "
            << model->Optimization() << (o.onednn ? ", oneDNN Graph fusion" : "") << "; loaded in " << load_ms
            << " ms\n";
  const std::vector<std::string> names = model->InputNames();
  if (names.size() != inputs.size()) {
    std::cerr << "floor: warning: the model's forward takes " << names.size() << " input(s), " << o.inputs
              << "/spec.json gives " << inputs.size() << "\n";
  }
  for (size_t i = 0; i < inputs.size() && i < names.size(); ++i) {
    if (inputs[i].name != names[i]) {
      std::cerr << "floor: warning: input " << i << " is '" << inputs[i].name << "' in spec.json but '" << names[i]
                << "' in the model (inputs are passed by position)\n";
    }
  }

  double warmup_ms = 0;
  std::vector<double> times;
  times.reserve(static_cast<size_t>(o.iters));
  auto timed = [&]() {
    auto begin = std::chrono::steady_clock::now();
    for (int i = 0; i < o.warmup; ++i) model->Forward();
    warmup_ms = MsSince(begin);
    for (int i = 0; i < o.iters; ++i) {
      begin = std::chrono::steady_clock::now();
      model->Forward();
      times.push_back(MsSince(begin));
    }
  };
  if (o.in_thread) {
    std::exception_ptr failure;
    std::thread worker([&]() {
      try {
        timed();
      } catch (...) {
        failure = std::current_exception();
      }
    });
    worker.join();
    if (failure) std::rethrow_exception(failure);
  } else {
    timed();
  }
  const Summary out = model->Last();
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  std::cerr << "floor: warm-up " << o.warmup << " in " << warmup_ms << " ms; " << o.iters << " timed, median "
            << sorted[(sorted.size() - 1) / 2] << " ms\n";

  std::ostringstream json;
  json << "{\"runner\": \"cpp\", \"libtorch\": " << JsonString(version) << ", \"threads\": " << at::get_num_threads()
       << ", \"optimized\": " << (model->Optimization() != "none" ? "true" : "false")
       << ", \"optimization\": " << JsonString(model->Optimization())
       << ", \"onednn\": " << (o.onednn ? "true" : "false") << ", \"in_thread\": " << (o.in_thread ? "true" : "false")
       << ", \"mkldnn\": " << (mkldnn ? "true" : "false") << ", \"warmup\": " << o.warmup
       << ", \"load_ms\": " << JsonNumber(load_ms) << ", \"times_ms\": [";
  for (size_t i = 0; i < times.size(); ++i) json << (i ? ", " : "") << JsonNumber(times[i]);
  json << "], \"output_sum\": " << JsonNumber(out.sum) << ", \"output_first\": [";
  for (size_t i = 0; i < out.first.size(); ++i) json << (i ? ", " : "") << JsonNumber(out.first[i]);
  json << "], \"output_shape\": [";
  for (size_t i = 0; i < out.shape.size(); ++i) json << (i ? ", " : "") << out.shape[i];
  json << "]}";
  std::cout << json.str() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(ParseArgs(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "floor: " << e.what() << "\n" << kUsage << "\n";
    return 2;
  } catch (const torchnode::Error& e) {
    std::cerr << "floor: " << e.code() << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "floor: " << e.what() << "\n";
    return 1;
  }
}
