// A forward's arguments, from what JavaScript passed (ArgValue, tensor_types.h) to the IValues LibTorch's
// forward takes, checked against the model's forward schema first: the library's TypeScript checks the same
// before anything is queued (src/torch/model.ts), and this is the check that holds whatever reaches the addon,
// so that no argument meets LibTorch in a state it would answer with its own message or worse.
#pragma once

#include <ATen/core/function_schema.h>
#include <ATen/core/ivalue.h>
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "script_model.h"
#include "tensor_types.h"

namespace torchnode {

// The arguments of `schema` (a method's: its first is self) for `args`, in order; left-out (Missing) and
// trailing arguments take their defaults. Tensors are made over the ArgValues' memory (moved to `device`
// when it is not the CPU): keep `args` alive until the forward is done. Throws Error ERR_INVALID_ARGUMENT,
// naming the argument, for a wrong count or type.
std::vector<c10::IValue> ToForwardArgs(const c10::FunctionSchema& schema, const std::vector<ArgValue>& args,
                                       const c10::Device& device);

// forward's arguments without self, for ModelInfo::inputs.
std::vector<ArgumentInfo> DescribeArguments(const c10::FunctionSchema& schema);

// Every tensor in `args`, lists included.
std::vector<TensorView> TensorViewsOf(const std::vector<ArgValue>& args);

}  // namespace torchnode
