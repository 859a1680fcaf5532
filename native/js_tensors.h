// Conversions between JavaScript values and the plain C++ tensors of script_model.h.
// Inputs are copied out of JavaScript's memory; outputs become external ArrayBuffers over LibTorch's memory.
// Everything here runs on the JavaScript thread.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "script_model.h"

namespace torchnode {

// A forward's inputs, in memory of their own. A forward waits in the queue and runs on the inference thread
// while JavaScript goes on, and a caller's typed array may meanwhile be written, or its ArrayBuffer
// transferred or detached and freed: so the data is copied as the forward is asked for (a copy costs far
// less than the forward that reads it), and the forward sees the values the caller passed.
struct CopiedInputs {
  std::vector<ArgValue> views;  // the arguments; each tensor over its own block of `storage`
  std::vector<std::unique_ptr<uint8_t[]>> storage;
};

// Parses `[{dtype, shape, data} | number | bigint | boolean | string | null | undefined | array, ...]`,
// checking every tensor field so that no input can reach LibTorch in a state that could crash the process,
// and copies the data (the values' types are checked against the model's schema by forward_args.h); throws
// Napi::TypeError / Napi::RangeError with a precise message and the code ERR_INVALID_ARGUMENT, among them for
// more than kMaxListElements list elements in all (tensor_types.h), before copying them; Napi::Error when the
// copy cannot be allocated (std::bad_alloc included: it never reaches std::terminate).
CopiedInputs ParseInputs(Napi::Env env, Napi::Value value);

// `{kind, tensors: [{name?, dtype, shape, data}]}`.
Napi::Object ResultToJs(Napi::Env env, const ForwardResult& result);

}  // namespace torchnode
