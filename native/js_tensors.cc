#include "js_tensors.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

namespace torchnode {

namespace {

constexpr size_t kMaxDims = 64;              // LibTorch's own limit on a tensor's dimensions
constexpr uint32_t kMaxInputs = 4096;        // far more than any forward takes (a huge sparse array is refused)
constexpr uint32_t kMaxListItems = 1 << 20;  // elements of one list argument (an int[] of a million is plenty)
constexpr int kMaxNesting = 4;               // lists of lists: deeper (or an array that contains itself) is refused
constexpr double kMaxSafeInteger = 9007199254740991;  // Number.MAX_SAFE_INTEGER

std::string Describe(Napi::Value value) {
  switch (value.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "boolean";
    case napi_number:
      return "number " + value.ToString().Utf8Value();
    case napi_string:
      return "string '" + value.As<Napi::String>().Utf8Value() + "'";
    case napi_bigint:
      return "bigint";
    case napi_symbol:
      return "symbol";
    case napi_function:
      return "function";
    default:
      if (value.IsArray()) return "array";
      if (value.IsTypedArray()) return "typed array";
      return "object";
  }
}

napi_typedarray_type TypedArrayTypeFor(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return napi_float32_array;
    case DType::Float64:
      return napi_float64_array;
    case DType::Float16:
      return napi_uint16_array;  // the bits
    case DType::Int8:
      return napi_int8_array;
    case DType::Int16:
      return napi_int16_array;
    case DType::Int32:
      return napi_int32_array;
    case DType::Int64:
      return napi_bigint64_array;
    case DType::UInt8:
    case DType::Bool:
      return napi_uint8_array;
  }
  return napi_uint8_array;
}

const char* TypedArrayName(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "Float32Array";
    case DType::Float64:
      return "Float64Array";
    case DType::Float16:
      return "Uint16Array";
    case DType::Int8:
      return "Int8Array";
    case DType::Int16:
      return "Int16Array";
    case DType::Int32:
      return "Int32Array";
    case DType::Int64:
      return "BigInt64Array";
    case DType::UInt8:
    case DType::Bool:
      return "Uint8Array";
  }
  return "TypedArray";
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

TensorView ParseInput(Napi::Env env, Napi::Value value, const std::string& where,
                      std::vector<std::unique_ptr<uint8_t[]>>* storage) {
  if (!value.IsObject() || value.IsArray()) {
    throw Napi::TypeError::New(
        env, "Expected an object {dtype, shape, data} for " + where + " but received " + Describe(value));
  }
  Napi::Object obj = value.As<Napi::Object>();

  TensorView view{};
  Napi::Value dtype = obj.Get("dtype");
  if (!dtype.IsString() || !ParseDType(dtype.As<Napi::String>().Utf8Value(), &view.dtype)) {
    throw Napi::TypeError::New(
        env, "Expected one of float32, float64, float16, int8, int16, int32, int64, uint8, bool for " + where +
                 ".dtype but received " + Describe(dtype));
  }

  Napi::Value shape = obj.Get("shape");
  if (!shape.IsArray()) {
    throw Napi::TypeError::New(
        env, "Expected an array of dimensions for " + where + ".shape but received " + Describe(shape));
  }
  Napi::Array dims = shape.As<Napi::Array>();
  if (dims.Length() > kMaxDims) {
    throw Napi::RangeError::New(env, "Expected at most " + std::to_string(kMaxDims) + " dimensions for " + where +
                                         ".shape but received " + std::to_string(dims.Length()));
  }
  double elements = 1;
  for (uint32_t i = 0; i < dims.Length(); ++i) {
    Napi::Value dim = dims.Get(i);
    if (!dim.IsNumber()) {
      throw Napi::TypeError::New(env, "Expected a non-negative integer for " + where + ".shape[" + std::to_string(i) +
                                          "] but received " + Describe(dim));
    }
    double d = dim.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > kMaxSafeInteger) {
      throw Napi::RangeError::New(env, "Expected a non-negative integer for " + where + ".shape[" + std::to_string(i) +
                                           "] but received " + Describe(dim));
    }
    view.shape.push_back(static_cast<int64_t>(d));
    elements *= d;
  }

  Napi::Value data = obj.Get("data");
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != TypedArrayTypeFor(view.dtype)) {
    throw Napi::TypeError::New(env, std::string("Expected a ") + TypedArrayName(view.dtype) + " for " + where +
                                        ".data (dtype " + DTypeName(view.dtype) + ") but received " + Describe(data));
  }
  // napi_get_typedarray_info also gives the memory of a typed array over a SharedArrayBuffer.
  napi_typedarray_type type;
  size_t length = 0;
  void* memory = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, data, &type, &length, &memory, nullptr, nullptr),
                       TensorView());
  // Compared as doubles: a product of dimensions can overflow 64-bit integers.
  if (elements != static_cast<double>(length)) {
    char expected[64];
    std::snprintf(expected, sizeof(expected), "%.0f", elements);
    throw Napi::RangeError::New(env, std::string("Expected ") + expected + " elements for " + where + " of shape " +
                                         ShapeString(view.shape) + " but its data holds " + std::to_string(length));
  }
  view.byte_length = length * ElementSize(view.dtype);
  if (view.byte_length > 0 && memory == nullptr) {
    throw Napi::TypeError::New(env, "The data of " + where + " is a detached ArrayBuffer");
  }
  // new[] aligns for every dtype; an empty tensor still gets a (one-byte) block, so that data is never null.
  std::unique_ptr<uint8_t[]> copy(new (std::nothrow) uint8_t[view.byte_length > 0 ? view.byte_length : 1]);
  if (!copy) {
    throw Napi::Error::New(env, "Cannot allocate " + std::to_string(view.byte_length) + " bytes to copy " + where);
  }
  if (view.byte_length > 0) std::memcpy(copy.get(), memory, view.byte_length);
  view.data = copy.get();
  storage->push_back(std::move(copy));
  if (view.dtype == DType::Bool) {
    // Checked on the copy: the values the forward will read.
    const uint8_t* bytes = static_cast<const uint8_t*>(view.data);
    for (size_t i = 0; i < view.byte_length; ++i) {
      if (bytes[i] > 1) {
        throw Napi::RangeError::New(env, "Expected only 0 and 1 in the data of bool " + where + " but element " +
                                             std::to_string(i) + " is " + std::to_string(bytes[i]));
      }
    }
  }
  return view;
}

Napi::Value TensorToJs(Napi::Env env, const OutputTensor& tensor) {
  Napi::ArrayBuffer buffer;
  if (tensor.byte_length == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    // Zero copy: the ArrayBuffer points at LibTorch's memory and keeps the tensor alive until collected.
    auto* owner = new std::shared_ptr<void>(tensor.owner);
    buffer = Napi::ArrayBuffer::New(
        env, const_cast<void*>(tensor.data), tensor.byte_length,
        [](Napi::Env, void*, std::shared_ptr<void>* hint) { delete hint; }, owner);
  }
  napi_value array;
  napi_status status = napi_create_typedarray(env, TypedArrayTypeFor(tensor.dtype),
                                              tensor.byte_length / ElementSize(tensor.dtype), buffer, 0, &array);
  NAPI_THROW_IF_FAILED(env, status, Napi::Value());

  Napi::Array shape = Napi::Array::New(env, tensor.shape.size());
  for (uint32_t i = 0; i < tensor.shape.size(); ++i) shape.Set(i, Napi::Number::New(env, tensor.shape[i]));

  Napi::Object out = Napi::Object::New(env);
  if (!tensor.name.empty()) out.Set("name", tensor.name);
  out.Set("dtype", DTypeName(tensor.dtype));
  out.Set("shape", shape);
  out.Set("data", Napi::Value(env, array));
  return out;
}

}  // namespace

namespace {

// A forward's argument: a tensor object, or a plain value for the model's non-tensor arguments (int, float,
// bool, str, lists of them, None). Its type is checked against the schema later (forward_args.h), where the
// schema is at hand; here only what JavaScript gave, copied.
ArgValue ParseArg(Napi::Env env, Napi::Value value, const std::string& where, int depth,
                  std::vector<std::unique_ptr<uint8_t[]>>* storage) {
  ArgValue arg;
  switch (value.Type()) {
    case napi_undefined:
      arg.kind = ArgValue::Kind::Missing;
      return arg;
    case napi_null:
      arg.kind = ArgValue::Kind::None;
      return arg;
    case napi_boolean:
      arg.kind = ArgValue::Kind::Bool;
      arg.boolean = value.As<Napi::Boolean>().Value();
      return arg;
    case napi_number:
      arg.kind = ArgValue::Kind::Number;
      arg.number = value.As<Napi::Number>().DoubleValue();
      return arg;
    case napi_bigint: {
      bool lossless = false;
      arg.kind = ArgValue::Kind::Int;
      arg.integer = value.As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless) {
        throw Napi::RangeError::New(
            env, "Expected a bigint within int64 for " + where + " but received " + value.ToString().Utf8Value());
      }
      return arg;
    }
    case napi_string:
      arg.kind = ArgValue::Kind::String;
      arg.string = value.As<Napi::String>().Utf8Value();
      return arg;
    default:
      break;
  }
  if (value.IsArray()) {
    Napi::Array array = value.As<Napi::Array>();
    if (depth >= kMaxNesting) {
      throw Napi::RangeError::New(env, "Expected at most " + std::to_string(kMaxNesting) + " levels of arrays for " +
                                           where + " but received deeper ones");
    }
    if (array.Length() > kMaxListItems) {
      throw Napi::RangeError::New(env, "Expected at most " + std::to_string(kMaxListItems) + " elements for " + where +
                                           " but received " + std::to_string(array.Length()));
    }
    arg.kind = ArgValue::Kind::List;
    arg.items.reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); ++i) {
      arg.items.push_back(ParseArg(env, array.Get(i), where + "[" + std::to_string(i) + "]", depth + 1, storage));
      if (arg.items.back().kind == ArgValue::Kind::Missing) {
        throw Napi::TypeError::New(
            env, "Expected a value for " + where + "[" + std::to_string(i) + "] but received undefined");
      }
    }
    return arg;
  }
  return ArgValue::OfTensor(ParseInput(env, value, where, storage));
}

}  // namespace

CopiedInputs ParseInputs(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) {
    throw Napi::TypeError::New(env, "Expected an array of inputs but received " + Describe(value));
  }
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() > kMaxInputs) {
    throw Napi::RangeError::New(env, "Expected at most " + std::to_string(kMaxInputs) + " inputs but received " +
                                         std::to_string(array.Length()));
  }
  CopiedInputs inputs;
  inputs.views.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    inputs.views.push_back(ParseArg(env, array.Get(i), "inputs[" + std::to_string(i) + "]", 0, &inputs.storage));
  }
  return inputs;
}

Napi::Object ResultToJs(Napi::Env env, const ForwardResult& result) {
  Napi::Array tensors = Napi::Array::New(env, result.tensors.size());
  for (uint32_t i = 0; i < result.tensors.size(); ++i) tensors.Set(i, TensorToJs(env, result.tensors[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", OutputKindName(result.kind));
  out.Set("tensors", tensors);
  return out;
}

}  // namespace torchnode
