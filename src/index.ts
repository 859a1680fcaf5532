// The library: run TorchScript models from Node with native LibTorch. It loads no HTTP code.
export { type InferenceModel, type Inputs, type InputValue, ModelError, type ModelRuntime, type ValueInfo } from './model.js';
export { TorchError } from './torch/errors.js';
export { TorchModel, type Device, type InferenceThreadChoice, type LoadOptions, type ModelInfo } from './torch/model.js';
export { runtimeInfo, setLogLevel, type LogLevel, type RuntimeInfo } from './torch/runtime.js';
export { DTYPES, fromFloat16Bits, Tensor, toFloat16Bits, type DType, type DTypeArray } from './torch/tensor.js';
