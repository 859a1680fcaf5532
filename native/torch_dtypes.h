// The addon's dtypes as LibTorch's scalar types, and back.
#pragma once

#include <c10/core/ScalarType.h>

#include "tensor_types.h"

namespace torchnode {

at::ScalarType ToScalarType(DType dtype);

// False for the scalar types JavaScript's typed arrays cannot hold (complex, quantized, ...).
bool FromScalarType(at::ScalarType type, DType* out);

}  // namespace torchnode
