// `torchscript-node/onnx`: the ONNX Runtime backend, behind the same interface as TorchModel. A separate entry,
// so that the main one never loads ONNX Runtime.
export { OnnxModel, type OnnxLoadOptions, type OnnxModelInfo } from './model.js';
export {
  type DType,
  type DTypeArray,
  DTYPES,
  fromFloat16Bits,
  type Inputs,
  type InputValue,
  ModelError,
  Tensor,
  toFloat16Bits,
  TorchError,
  type ValueInfo,
} from '../index.js';
