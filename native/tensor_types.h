// The tensors that cross between JavaScript and LibTorch, as plain C++ (no N-API, no LibTorch): their
// dtypes, the inputs handed to a forward and the outputs it gives back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace torchnode {

// Every dtype a JavaScript typed array can hold: float16 travels as its bits in a Uint16Array (Node 20 has no
// Float16Array), bool as one byte per element (0 or 1).
enum class DType { Float32, Float64, Float16, Int8, Int16, Int32, Int64, UInt8, Bool };

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

// Number.MAX_SAFE_INTEGER: the largest integer a JavaScript number holds exactly (a shape's dimension, an int
// argument given as a number, must not be beyond it).
inline constexpr double kMaxSafeInteger = 9007199254740991;

// The most list elements one forward takes, counted over every list of every argument at every level (an inner
// array passed many times counts each time), as the library's TypeScript counts them (src/torch/forward-args.ts:
// MAX_LIST_ELEMENTS). Each element is copied into an ArgValue (about 140 bytes) before the schema is looked at:
// without a bound in all, lists sharing one inner array could ask for more than memory holds.
inline constexpr size_t kMaxListElements = size_t{1} << 20;

// One argument of a forward, as JavaScript passed it (copied: nothing here points into JavaScript's memory).
// A JavaScript number stays a Number until the model's schema says whether it is an int or a float
// (forward_args.h converts and checks it); Missing is an argument left out (its default applies).
struct ArgValue {
  enum class Kind { Tensor, None, Missing, Bool, Number, Int, String, List };
  Kind kind = Kind::None;
  TensorView tensor{};          // Tensor
  bool boolean = false;         // Bool
  double number = 0;            // Number
  int64_t integer = 0;          // Int (a JavaScript bigint)
  std::string string;           // String
  std::vector<ArgValue> items;  // List

  static ArgValue OfTensor(TensorView view) {
    ArgValue v;
    v.kind = Kind::Tensor;
    v.tensor = std::move(view);
    return v;
  }
};

// What a kind of argument is called in messages: "a tensor", "a number", ...
const char* ArgKindName(ArgValue::Kind kind);

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
