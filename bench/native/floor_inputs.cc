// An inputs folder read into LibTorch tensors (floor_inputs.h).
#include "floor_inputs.h"

#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "floor_errors.h"
#include "floor_json.h"

namespace floor_bench {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

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

}  // namespace

std::vector<Input> ReadInputs(const std::string& dir) {
  const std::string spec_path = dir + "/spec.json";
  const Json spec = [&] {
    try {
      return ParseJson(ReadFile(spec_path));
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

}  // namespace floor_bench
