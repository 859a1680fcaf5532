#include "tensor_types.h"

namespace torchnode {

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
    case DType::Float16:
      return "float16";
    case DType::Int8:
      return "int8";
    case DType::Int16:
      return "int16";
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
  static const DType all[] = {DType::Float32, DType::Float64, DType::Float16, DType::Int8, DType::Int16,
                              DType::Int32,   DType::Int64,   DType::UInt8,   DType::Bool};
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
    case DType::Float16:
    case DType::Int16:
      return 2;
    case DType::Int8:
    case DType::UInt8:
    case DType::Bool:
      return 1;
  }
  return 1;
}

const char* ArgKindName(ArgValue::Kind kind) {
  switch (kind) {
    case ArgValue::Kind::Tensor:
      return "a tensor";
    case ArgValue::Kind::None:
      return "null";
    case ArgValue::Kind::Missing:
      return "nothing";
    case ArgValue::Kind::Bool:
      return "a boolean";
    case ArgValue::Kind::Number:
      return "a number";
    case ArgValue::Kind::Int:
      return "a bigint";
    case ArgValue::Kind::String:
      return "a string";
    case ArgValue::Kind::List:
      return "an array";
  }
  return "a value";
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

}  // namespace torchnode
