// The messages between OnnxModel and its session worker (session-worker.ts), and the conversion between the
// library's Tensor and ONNX Runtime's tensor, used on both sides.
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';

import { ModelError } from '../model.js';
import { Tensor, type DType, type DTypeArray } from '../torch/tensor.js';

/** A tensor as it crosses to the worker (structured clone copies the typed array) and back (transferred). */
export interface WireTensor {
  dtype: DType;
  shape: number[];
  data: DTypeArray[DType];
  name?: string;
}

export type Request =
  | { type: 'load'; file: string; settings: SessionSettings; niceness: number }
  | { type: 'run'; id: number; inputs: WireTensor[] }
  | { type: 'dispose' };

export type Reply =
  | { type: 'loaded'; inputNames: string[]; outputNames: string[] }
  | { type: 'result'; id: number; outputs: WireTensor[] }
  | { type: 'error'; id?: number; message: string; code: string }
  | { type: 'disposed' };

/** ONNX Runtime's element type for each of the library's dtypes (bool: one byte per element either way). */
const ORT_TYPE: Record<DType, OrtTensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  bool: 'bool',
};

const DTYPE_OF: Partial<Record<string, DType>> = Object.fromEntries(Object.entries(ORT_TYPE).map(([d, t]) => [t, d as DType]));

/** How an OnnxModel's session is made (OnnxLoadOptions, validated). */
export interface SessionSettings {
  threads: number;
  spinning: boolean;
}

/**
 * The session options of every OnnxModel: `threads` intra-op threads, one graph at a time, all graph
 * optimisations; and, with `spinning` false, intra-op threads that sleep as soon as a parallel section ends
 * instead of busy-waiting for the next one (ONNX Runtime's `session.intra_op.allow_spinning`).
 */
export function sessionOptions({ threads, spinning }: SessionSettings): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
  };
}

export function toOrt(ort: typeof import('onnxruntime-node'), tensor: WireTensor | Tensor): OrtTensor {
  return new ort.Tensor(ORT_TYPE[tensor.dtype], tensor.data as never, [...tensor.shape]);
}

export function fromOrt(tensor: OrtTensor, name: string): WireTensor {
  const dtype = DTYPE_OF[tensor.type];
  if (!dtype) throw new ModelError(`Output ${name} has element type ${tensor.type}, which the library's Tensor does not hold`, 'ERR_UNSUPPORTED_OUTPUT');
  return { dtype, shape: [...tensor.dims], data: tensor.data as DTypeArray[DType], name };
}

export function toTensor(wire: WireTensor): Tensor {
  return new Tensor(wire.dtype, wire.data, wire.shape, wire.name);
}

/** Runs a session on positional inputs (matched to the graph's inputs in order); outputs in the graph's order. */
export async function runSession(
  ort: typeof import('onnxruntime-node'),
  session: InferenceSession,
  inputs: readonly (WireTensor | Tensor)[],
): Promise<WireTensor[]> {
  if (inputs.length !== session.inputNames.length) {
    throw new ModelError(`The model takes ${session.inputNames.length} inputs (${session.inputNames.join(', ')}) but received ${inputs.length}`, 'ERR_FORWARD');
  }
  const feeds = Object.fromEntries(session.inputNames.map((name, i) => [name, toOrt(ort, inputs[i])]));
  let results: InferenceSession.OnnxValueMapType;
  try {
    results = await session.run(feeds);
  } catch (err) {
    throw new ModelError((err as Error).message, 'ERR_FORWARD');
  }
  return session.outputNames.map((name) => fromOrt(results[name] as OrtTensor, name));
}
