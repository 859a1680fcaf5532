// The contract both backends keep: TorchModel (LibTorch, through the addon) and OnnxModel (ONNX Runtime).
// Positional tensors in, a list of tensors out; forwards run off the event loop; dispose() after the forwards
// already called. Errors, the same way in both:
//   - argument mistakes (not an array of Tensor, an unknown option) throw TypeError or RangeError at once,
//     synchronously, from load() and forward(): nothing is queued;
//   - everything else rejects the promise with a ModelError (a file that is not a model, a forward that
//     fails, a disposed model), with a stable `code`. LibTorch's are TorchErrors, a subclass.
import type { Tensor } from './torch/tensor.js';

/**
 * A model that could not be loaded or run, by either backend. `code` is stable, for programs to switch on:
 * ERR_MODEL_NOT_FOUND, ERR_MODEL_LOAD, ERR_FORWARD, ERR_UNSUPPORTED_OUTPUT, ERR_MODEL_DISPOSED, ... (see
 * TorchError for LibTorch's full list); `details` is the backend's full message where there is one.
 */
export class ModelError extends Error {
  override readonly name: string = 'ModelError';

  constructor(
    message: string,
    readonly code: string,
    readonly details: string = '',
  ) {
    super(message);
  }
}

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
