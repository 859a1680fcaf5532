// An inputs folder for the C++ floor: spec.json, {"inputs": [{"name", "dtype", "shape", "file"}, ...]}, and one
// file of raw little-endian C-contiguous data per input (dtypes float32, float64, int32, int64), made into
// tensors once, before any timing.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "script_model.h"

namespace floor_bench {

struct Input {
  std::string name;
  torchnode::DType dtype;
  at::Tensor tensor;  // owns the data, in LibTorch's (aligned) memory
};

// The inputs of `dir`, in spec.json's order; throws InputError when the spec or a file cannot be used.
std::vector<Input> ReadInputs(const std::string& dir);

}  // namespace floor_bench
