// The tensors that cross between JavaScript and LibTorch, as plain C++ (no N-API, no LibTorch): their
// dtypes, the inputs handed to a forward and the outputs it gives back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace torchnode {

enum class DType { Float32, Float64, Int32, Int64, UInt8, Bool };

const char* DTypeName(DType dtype);
bool ParseDType(const std::string& name, DType* out);
size_t ElementSize(DType dtype);

// An input tensor that borrows its memory: the caller keeps `data` alive and unchanged until Forward returns.
struct TensorView {
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t byte_length;
};

// An output tensor in contiguous CPU memory; `owner` keeps `data` alive (it holds LibTorch's tensor).
struct OutputTensor {
  std::string name;  // the key, for dict outputs
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t byte_length;
  std::shared_ptr<void> owner;
};

enum class OutputKind { Tensor, Tuple, List, Dict };
const char* OutputKindName(OutputKind kind);

struct ForwardResult {
  OutputKind kind = OutputKind::Tensor;
  std::vector<OutputTensor> tensors;
};

}  // namespace torchnode
