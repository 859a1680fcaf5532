// The fixture models made by test/fixtures/make_models.py (see test/global-setup.ts), what eager PyTorch
// computed for their examples (expected.json), and the comparison of the library's outputs with it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'vitest';

import { Tensor, type DType, type Device } from '../../src/index.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '.fixtures');

export interface TensorJson {
  name: string | null;
  dtype: DType;
  shape: number[];
  data: number[];
}

export interface OutputJson {
  kind: 'tensor' | 'tuple' | 'list' | 'dict';
  tensors: TensorJson[];
}

export interface ExampleJson {
  name: string;
  inputs: TensorJson[];
  output: OutputJson;
}

export interface ModelJson {
  file: string;
  examples: ExampleJson[];
  /** Inputs the model rejects (the `raises` model). */
  bad_inputs?: TensorJson[];
}

export interface ExpectedJson {
  torchVersion: string;
  seed: number;
  models: Record<string, ModelJson>;
  /** The files that are not TorchScript, by role: state_dict, checkpoint, legacy, truncated, ... */
  files: Record<string, string>;
}

let cache: ExpectedJson | undefined;

export function expected(): ExpectedJson {
  cache ??= JSON.parse(readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as ExpectedJson;
  return cache;
}

export function modelNames(): string[] {
  return Object.keys(expected().models);
}

export function modelJson(name: string): ModelJson {
  const model = expected().models[name];
  if (!model) throw new Error(`No fixture model '${name}' in expected.json`);
  return model;
}

/** The absolute path of a fixture model. */
export function modelPath(name: string): string {
  return path.join(FIXTURES, modelJson(name).file);
}

/** The absolute path of one of the files that are not TorchScript (state_dict, legacy, empty, ...). */
export function filePath(role: string): string {
  const file = expected().files[role];
  if (!file) throw new Error(`No fixture file '${role}' in expected.json`);
  return path.join(FIXTURES, file);
}

export function exampleJson(model: string, name = 'default'): ExampleJson {
  const found = modelJson(model).examples.find((e) => e.name === name);
  if (!found) throw new Error(`No example '${name}' for fixture model '${model}'`);
  return found;
}

/** A library Tensor holding a fixture's data, in the typed array of its dtype. */
export function toTensor(json: TensorJson): Tensor {
  switch (json.dtype) {
    case 'float32':
      return Tensor.float32(Float32Array.from(json.data), json.shape);
    case 'float64':
      return Tensor.float64(Float64Array.from(json.data), json.shape);
    case 'int32':
      return Tensor.int32(Int32Array.from(json.data), json.shape);
    case 'int64':
      return Tensor.int64(
        BigInt64Array.from(json.data, (v) => BigInt(v)),
        json.shape,
      );
    case 'uint8':
      return Tensor.uint8(Uint8Array.from(json.data), json.shape);
    case 'bool':
      return Tensor.bool(Uint8Array.from(json.data), json.shape);
    default:
      throw new Error(`Unknown dtype ${String(json.dtype)} in expected.json`);
  }
}

export function exampleInputs(model: string, name = 'default'): Tensor[] {
  return exampleJson(model, name).inputs.map(toTensor);
}

/**
 * Where `actual` differs from `want` beyond `tolerance` (|a - e| <= tolerance * (1 + |e|) for floats,
 * exact for integers and bools), as a message; undefined when they match.
 */
export function tensorMismatch(actual: Tensor, want: TensorJson, tolerance: number): string | undefined {
  if (!(actual instanceof Tensor)) return `expected a Tensor but got ${String(actual)}`;
  if (actual.dtype !== want.dtype) return `dtype ${actual.dtype}, expected ${want.dtype}`;
  if (JSON.stringify(actual.shape) !== JSON.stringify(want.shape)) {
    return `shape [${actual.shape.join(', ')}], expected [${want.shape.join(', ')}]`;
  }
  if (actual.data.length !== want.data.length) return `${actual.data.length} elements, expected ${want.data.length}`;
  const float = actual.dtype === 'float32' || actual.dtype === 'float64';
  for (let i = 0; i < want.data.length; i++) {
    const a = actual.data[i] as number | bigint;
    const e = want.data[i];
    const ok = typeof a === 'bigint' ? a === BigInt(e) : float ? Number.isFinite(a) && Math.abs(a - e) <= tolerance * (1 + Math.abs(e)) : a === e;
    if (!ok) return `element ${i} is ${String(a)}, expected ${e} (tolerance ${float ? tolerance : 0})`;
  }
  return undefined;
}

/** Asserts that the outputs of forward() are the example's outputs: count, order, names, dtypes, shapes, data. */
export function expectOutputs(actual: readonly Tensor[], want: OutputJson, tolerance: number, where = ''): void {
  const prefix = where ? `${where}: ` : '';
  expect(actual.length, `${prefix}number of outputs`).toBe(want.tensors.length);
  want.tensors.forEach((w, i) => {
    expect(actual[i].name, `${prefix}name of output ${i}`).toBe(w.name ?? undefined);
    expect(tensorMismatch(actual[i], w, tolerance), `${prefix}output ${i}${w.name ? ` (${w.name})` : ''}`).toBeUndefined();
  });
}

/** The largest absolute difference between two float tensors of the same shape. */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    max = Math.max(max, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  }
  return max;
}

/**
 * The device the output-equality tests load models on: TORCH_NODE_TEST_DEVICE (default 'cpu'; the GPU
 * check runs the suite with 'cuda'), and the float tolerance that goes with it.
 */
export const TEST_DEVICE: Device = (() => {
  const value = process.env.TORCH_NODE_TEST_DEVICE || 'cpu';
  if (value !== 'cpu' && value !== 'cuda' && !/^cuda:\d+$/.test(value)) {
    throw new Error(`TORCH_NODE_TEST_DEVICE must be cpu, cuda or cuda:N, not '${value}'`);
  }
  return value as Device;
})();

export const TOLERANCE = TEST_DEVICE === 'cpu' ? 1e-5 : 1e-4;

/** What info().device reads for TEST_DEVICE. */
export const TEST_DEVICE_NAME = TEST_DEVICE === 'cuda' ? 'cuda:0' : TEST_DEVICE;
