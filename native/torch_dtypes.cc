#include "torch_dtypes.h"

namespace torchnode {

at::ScalarType ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return at::kFloat;
    case DType::Float64:
      return at::kDouble;
    case DType::Float16:
      return at::kHalf;
    case DType::Int8:
      return at::kChar;
    case DType::Int16:
      return at::kShort;
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
    case at::kHalf:
      *out = DType::Float16;
      return true;
    case at::kChar:
      *out = DType::Int8;
      return true;
    case at::kShort:
      *out = DType::Int16;
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

}  // namespace torchnode
