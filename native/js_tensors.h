// Conversions between JavaScript values and the plain C++ tensors of script_model.h.
// Inputs are read in place (no copy); outputs become external ArrayBuffers over LibTorch's memory.
// Everything here runs on the JavaScript thread.
#pragma once

#include <napi.h>

#include <vector>

#include "script_model.h"

namespace torchnode {

// Parses `[{dtype, shape, data}, ...]`, checking every field so that no input can reach LibTorch in a
// state that could crash the process; throws Napi::TypeError / Napi::RangeError with a precise message.
// Each typed array is appended to `keep_alive`: its memory is read by the inference thread later.
std::vector<TensorView> ParseInputs(Napi::Env env, Napi::Value value, std::vector<Napi::ObjectReference>* keep_alive);

// `{kind, tensors: [{name?, dtype, shape, data}]}`.
Napi::Object ResultToJs(Napi::Env env, const ForwardResult& result);

}  // namespace torchnode
