// The contract both backends keep: TorchModel (LibTorch, through the addon) and OnnxModel (ONNX Runtime).
// Inputs in (positional, or by name), a list of tensors out (or a record by name); forwards run off the event
// loop; dispose() after the forwards already called. Errors, the same way in both:
//   - argument mistakes (not an array of Tensor, an unknown option, an input count the model does not take, a
//     dtype or rank its metadata rules out) throw TypeError or RangeError at once, synchronously, from load()
//     and forward(), with the code ERR_INVALID_ARGUMENT and the same message for the same mistake in both:
//     nothing is queued;
//   - everything else rejects the promise with a ModelError (a file that is not a model, a forward that
//     fails, a disposed model), with a stable `code`. LibTorch's are TorchErrors, a subclass.
import type { DType, Tensor } from './torch/tensor.js';

/**
 * A model that could not be loaded or run, by either backend. `code` is stable, for programs to switch on:
 * ERR_MODEL_NOT_FOUND, ERR_MODEL_LOAD, ERR_FORWARD, ERR_UNSUPPORTED_OUTPUT, ERR_MODEL_DISPOSED,
 * ERR_UNSUPPORTED_DEVICE (OnnxModel on CUDA), ... (see
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

/**
 * One argument of a forward: a tensor; or, for a TorchScript model's non-tensor arguments (`int`, `float`,
 * `bool`, `str`, lists of them, `Optional`), a plain value: a number (a bigint for an int beyond 2^53), a
 * boolean, a string, an array, null for None. undefined leaves an argument that has a default out.
 */
export type InputValue = Tensor | number | bigint | boolean | string | null | undefined | readonly InputValue[];

/** A forward's inputs: in the model's order, or by name (`model.inputNames`). */
export type Inputs = readonly InputValue[] | { readonly [name: string]: InputValue };

/** What a model says about one of its inputs or outputs. */
export interface ValueInfo {
  name: string;
  /**
   * `Tensor` for a tensor; for a TorchScript model's other arguments, TorchScript's type: `int`, `float`,
   * `bool`, `str`, `List[int]`, `Optional[Tensor]`, ...
   */
  type: string;
  /** The element type, where the model says it (ONNX); null where it does not (TorchScript's `Tensor`). */
  dtype: DType | null;
  /** The dimensions, where the model says them (ONNX: numbers, a string for a named dimension); else null. */
  shape: readonly (number | string)[] | null;
  /** Whether the input may be left out (a TorchScript argument with a default). */
  optional: boolean;
}

export interface InferenceModel {
  /** `cpu` or `cuda:N`. */
  readonly device: string;
  readonly runtime: ModelRuntime;
  /** The inputs' names, in order. */
  readonly inputNames: readonly string[];
  /** The outputs' names, in order: ONNX's graph outputs; [] for TorchScript, whose schema names none. */
  readonly outputNames: readonly string[];
  /** The inputs, with what is known of each. */
  readonly inputs: readonly ValueInfo[];
  /** The outputs, with what is known of each ([] for TorchScript). */
  readonly outputs: readonly ValueInfo[];
  /** Runs the model; its outputs in order (a TorchScript dict's values carry their key as `name`). */
  forward(inputs: Inputs): Promise<Tensor[]>;
  /** Runs the model; its outputs by name (ONNX's output names; a TorchScript model's dict keys). */
  forwardNamed(inputs: Inputs): Promise<Record<string, Tensor>>;
  dispose(): Promise<void>;
}
