#include "js_tensors.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "tensor_types.h"

namespace torchnode {

namespace {

constexpr size_t kMaxDims = 64;        // LibTorch's own limit on a tensor's dimensions
constexpr uint32_t kMaxInputs = 4096;  // far more than any forward takes (a huge sparse array is refused)
constexpr int kMaxNesting = 4;         // lists of lists: deeper (or an array that contains itself) is refused
// kMaxListElements, kMaxSafeInteger: tensor_types.h

// The argument mistakes below are TypeError / RangeError with the code ERR_INVALID_ARGUMENT, as the library's
// own checks throw them (src/torch/validate.ts: argumentError); the code is not enumerable there either.
Napi::Error WithCode(Napi::Env env, Napi::Error error) {
  error.Value().DefineProperty(
      Napi::PropertyDescriptor::Value("code", Napi::String::New(env, "ERR_INVALID_ARGUMENT"),
                                      static_cast<napi_property_attributes>(napi_writable | napi_configurable)));
  return error;
}
Napi::Error ArgumentTypeError(Napi::Env env, const std::string& message) {
  return WithCode(env, Napi::TypeError::New(env, message));
}
Napi::Error ArgumentRangeError(Napi::Env env, const std::string& message) {
  return WithCode(env, Napi::RangeError::New(env, message));
}

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
    throw ArgumentTypeError(
        env, "Expected an object {dtype, shape, data} for " + where + " but received " + Describe(value));
  }
  Napi::Object obj = value.As<Napi::Object>();

  TensorView view{};
  Napi::Value dtype = obj.Get("dtype");
  if (!dtype.IsString() || !ParseDType(dtype.As<Napi::String>().Utf8Value(), &view.dtype)) {
    throw ArgumentTypeError(
        env, "Expected one of float32, float64, float16, int8, int16, int32, int64, uint8, bool for " + where +
                 ".dtype but received " + Describe(dtype));
  }

  Napi::Value shape = obj.Get("shape");
  if (!shape.IsArray()) {
    throw ArgumentTypeError(env,
                            "Expected an array of dimensions for " + where + ".shape but received " + Describe(shape));
  }
  Napi::Array dims = shape.As<Napi::Array>();
  if (dims.Length() > kMaxDims) {
    throw ArgumentRangeError(env, "Expected at most " + std::to_string(kMaxDims) + " dimensions for " + where +
                                      ".shape but received " + std::to_string(dims.Length()));
  }
  double elements = 1;
  for (uint32_t i = 0; i < dims.Length(); ++i) {
    Napi::Value dim = dims.Get(i);
    if (!dim.IsNumber()) {
      throw ArgumentTypeError(env, "Expected a non-negative integer for " + where + ".shape[" + std::to_string(i) +
                                       "] but received " + Describe(dim));
    }
    double d = dim.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > kMaxSafeInteger) {
      throw ArgumentRangeError(env, "Expected a non-negative integer for " + where + ".shape[" + std::to_string(i) +
                                        "] but received " + Describe(dim));
    }
    view.shape.push_back(static_cast<int64_t>(d));
    elements *= d;
  }

  Napi::Value data = obj.Get("data");
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != TypedArrayTypeFor(view.dtype)) {
    throw ArgumentTypeError(env, std::string("Expected a ") + TypedArrayName(view.dtype) + " for " + where +
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
    throw ArgumentRangeError(env, std::string("Expected ") + expected + " elements for " + where + " of shape " +
                                      ShapeString(view.shape) + " but its data holds " + std::to_string(length));
  }
  view.byte_length = length * ElementSize(view.dtype);
  if (view.byte_length > 0 && memory == nullptr) {
    throw ArgumentTypeError(env, "The data of " + where + " is a detached ArrayBuffer");
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
        throw ArgumentRangeError(env, "Expected only 0 and 1 in the data of bool " + where + " but element " +
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
// `list_elements`: the list elements of the forward's arguments so far (kMaxListElements).
ArgValue ParseArg(Napi::Env env, Napi::Value value, const std::string& where, int depth, size_t* list_elements,
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
        throw ArgumentRangeError(
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
      throw ArgumentRangeError(env, "Expected at most " + std::to_string(kMaxNesting) + " levels of arrays for " +
                                        where + " but received deeper ones");
    }
    // Counted before anything is copied: a huge list, or lists that share one inner array, end here at once.
    if (array.Length() > kMaxListElements - *list_elements) {
      throw ArgumentRangeError(env, "Expected at most " + std::to_string(kMaxListElements) +
                                        " list elements (the lists of all inputs together, at every level) for " +
                                        where + " but received at least " +
                                        std::to_string(*list_elements + array.Length()) +
                                        ": pass large data as a tensor");
    }
    *list_elements += array.Length();
    arg.kind = ArgValue::Kind::List;
    arg.items.reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); ++i) {
      arg.items.push_back(
          ParseArg(env, array.Get(i), where + "[" + std::to_string(i) + "]", depth + 1, list_elements, storage));
      if (arg.items.back().kind == ArgValue::Kind::Missing) {
        throw ArgumentTypeError(env,
                                "Expected a value for " + where + "[" + std::to_string(i) + "] but received undefined");
      }
    }
    return arg;
  }
  return ArgValue::OfTensor(ParseInput(env, value, where, storage));
}

}  // namespace

CopiedInputs ParseInputs(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) {
    throw ArgumentTypeError(env, "Expected an array of inputs but received " + Describe(value));
  }
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() > kMaxInputs) {
    throw ArgumentRangeError(env, "Expected at most " + std::to_string(kMaxInputs) + " inputs but received " +
                                      std::to_string(array.Length()));
  }
  CopiedInputs inputs;
  size_t list_elements = 0;
  try {
    inputs.views.reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); ++i) {
      inputs.views.push_back(
          ParseArg(env, array.Get(i), "inputs[" + std::to_string(i) + "]", 0, &list_elements, &inputs.storage));
    }
  } catch (const std::bad_alloc&) {
    // The copies did not fit in memory (lists within kMaxListElements, but little memory left): an error to
    // catch, not std::terminate.
    throw Napi::Error::New(env, "Cannot allocate the memory to copy the inputs (out of memory)");
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
