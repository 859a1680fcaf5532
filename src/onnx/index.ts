// `torchscript-node/onnx`: the ONNX Runtime backend, behind the same interface as TorchModel. A separate entry,
// so that the main one never loads ONNX Runtime.
export { OnnxModel, type OnnxLoadOptions, type OnnxModelInfo } from './model.js';
export { ModelError, Tensor, TorchError } from '../index.js';
