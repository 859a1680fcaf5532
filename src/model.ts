// The contract both backends keep: TorchModel (LibTorch, through the addon) and OnnxModel (ONNX Runtime).
// Positional tensors in, a list of tensors out; forwards run off the event loop; dispose() after the forwards
// already called.
import type { Tensor } from './torch/tensor.js';

/** What runs a model: for logs and /system_status. */
export interface ModelRuntime {
  backend: 'torch' | 'onnx';
  /** LibTorch's or ONNX Runtime's version. */
  version: string;
  /** Intra-op threads of the model's forwards. */
  threads: number;
}

export interface InferenceModel {
  /** `cpu` or `cuda:N`. */
  readonly device: string;
  readonly runtime: ModelRuntime;
  forward(inputs: readonly Tensor[]): Promise<Tensor[]>;
  dispose(): Promise<void>;
}
