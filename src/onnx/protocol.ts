// The messages between OnnxModel and its session worker (session-worker.ts), and the conversion between the
// library's Tensor and ONNX Runtime's tensor, used on both sides.
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';

import { ModelError, type ValueInfo } from '../model.js';
import { Tensor, type DType, type DTypeArray } from '../torch/tensor.js';
import { argumentError, takes } from '../torch/validate.js';

/** A tensor as it crosses to the worker (structured clone copies the typed array) and back (transferred). */
export interface WireTensor {
  dtype: DType;
  shape: number[];
  data: DTypeArray[DType];
  name?: string;
}

export type Request =
  | { type: 'load'; file: string; bytes?: Uint8Array; settings: SessionSettings; niceness: number }
  | { type: 'run'; id: number; inputs: WireTensor[] }
  | { type: 'dispose' };

export type Reply =
  | { type: 'loaded'; inputs: OnnxValueInfo[]; outputs: OnnxValueInfo[] }
  | { type: 'result'; id: number; outputs: WireTensor[] }
  | { type: 'error'; id?: number; message: string; code: string }
  | { type: 'disposed' };

/**
 * ONNX Runtime's element type for each of the library's dtypes (bool: one byte per element either way;
 * float16: its bits in a Uint16Array, as onnxruntime-node takes and gives them where there is no Float16Array).
 */
const ORT_TYPE: Record<DType, OrtTensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int8: 'int8',
  int16: 'int16',
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
  let data = tensor.data as ArrayBufferView;
  // Where Node has a Float16Array, onnxruntime may give one: the library's float16 is the bits.
  if (dtype === 'float16' && !(data instanceof Uint16Array)) data = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  return { dtype, shape: [...tensor.dims], data: data as DTypeArray[DType], name };
}

/** An input's or output's metadata, and ONNX Runtime's own element type (which may be one the library lacks). */
export interface OnnxValueInfo extends ValueInfo {
  elementType: string | null;
}

/** The session's metadata as the library's ValueInfo (an empty shape is unknown: ONNX Runtime says so too). */
export function valueInfos(names: readonly string[], metadata: readonly InferenceSession.ValueMetadata[] | undefined): OnnxValueInfo[] {
  return names.map((name, i) => {
    const m = metadata?.[i];
    if (!m) return { name, type: 'Tensor', dtype: null, shape: null, optional: false, elementType: null };
    if (!m.isTensor) return { name, type: 'non-tensor', dtype: null, shape: null, optional: false, elementType: null };
    const shape = m.shape.length > 0 ? m.shape.map((d) => (typeof d === 'number' && d < 0 ? '?' : d)) : null;
    return { name, type: 'Tensor', dtype: DTYPE_OF[m.type] ?? null, shape, optional: false, elementType: m.type };
  });
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
    // OnnxModel checks first; this holds for whatever reaches the worker.
    const slots = session.inputNames.map((name) => ({ name, required: true }));
    throw argumentError(`The model takes ${takes(slots)} but received ${inputs.length}`, 'range');
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
