// The native addon on its own, with the library's checks bypassed: every malformed input must be refused
// with a TypeError or RangeError thrown synchronously by forward() (nothing queued), and never crash the
// process; the model keeps working after each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TorchError } from '../../src/index.js';
import { binding, type NativeModel } from '../../src/torch/binding.js';
import { exampleJson, modelPath } from '../helpers/fixtures.js';

const { binding: native } = binding();
let model: NativeModel;

beforeAll(async () => {
  model = await native.load(modelPath('add_mul'), { device: 'cpu', threads: 1 });
});

afterAll(async () => {
  await model.dispose();
});

const f32 = (n: number) => new Float32Array(n);
const good = () => ({ dtype: 'float32', shape: [3], data: f32(3) });

function detached(n: number): Float32Array {
  const buffer = new ArrayBuffer(n * 4);
  const array = new Float32Array(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  return array;
}

// [what, inputs, error class, message]
const malformed: [string, unknown, typeof TypeError | typeof RangeError, string | RegExp][] = [
  ['inputs that are not an array', 5, TypeError, 'Expected an array of inputs but received number 5'],
  [
    'an unknown dtype',
    [{ dtype: 'complex64', shape: [3], data: f32(3) }],
    TypeError,
    "Expected one of float32, float64, float16, int8, int16, int32, int64, uint8, bool for inputs[0].dtype but received string 'complex64'",
  ],
  [
    'a missing dtype',
    [{ shape: [3], data: f32(3) }],
    TypeError,
    'Expected one of float32, float64, float16, int8, int16, int32, int64, uint8, bool for inputs[0].dtype but received undefined',
  ],
  [
    'float16 data that is not its bits (a Uint16Array)',
    [{ dtype: 'float16', shape: [3], data: f32(3) }],
    TypeError,
    'Expected a Uint16Array for inputs[0].data (dtype float16) but received typed array',
  ],
  [
    'a shape that is not an array',
    [{ dtype: 'float32', shape: 3, data: f32(3) }],
    TypeError,
    'Expected an array of dimensions for inputs[0].shape but received number 3',
  ],
  [
    'a negative dimension',
    [good(), { dtype: 'float32', shape: [-3], data: f32(3) }],
    RangeError,
    'Expected a non-negative integer for inputs[1].shape[0] but received number -3',
  ],
  [
    'a fractional dimension',
    [{ dtype: 'float32', shape: [1.5, 2], data: f32(3) }],
    RangeError,
    'Expected a non-negative integer for inputs[0].shape[0] but received number 1.5',
  ],
  [
    'a NaN dimension',
    [{ dtype: 'float32', shape: [3, NaN], data: f32(3) }],
    RangeError,
    'Expected a non-negative integer for inputs[0].shape[1] but received number NaN',
  ],
  [
    'an infinite dimension',
    [{ dtype: 'float32', shape: [Infinity], data: f32(3) }],
    RangeError,
    /^Expected a non-negative integer for inputs\[0\]\.shape\[0\] but received number Infinity$/,
  ],
  [
    'a dimension beyond 2^53',
    [{ dtype: 'float32', shape: [2 ** 54], data: f32(3) }],
    RangeError,
    /^Expected a non-negative integer for inputs\[0\]\.shape\[0\]/,
  ],
  [
    'a string dimension',
    [{ dtype: 'float32', shape: ['3'], data: f32(3) }],
    TypeError,
    "Expected a non-negative integer for inputs[0].shape[0] but received string '3'",
  ],
  [
    'a shape whose element count overflows 64 bits',
    [{ dtype: 'float32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data: f32(3) }],
    RangeError,
    'Expected 1329227995784915872903807060280344576 elements for inputs[0] of shape [1099511627776,1099511627776,1099511627776] but its data holds 3',
  ],
  [
    '65 dimensions',
    [{ dtype: 'float32', shape: new Array(65).fill(1), data: f32(1) }],
    RangeError,
    'Expected at most 64 dimensions for inputs[0].shape but received 65',
  ],
  [
    'data of the wrong typed array',
    [{ dtype: 'float32', shape: [3], data: new Float64Array(3) }],
    TypeError,
    'Expected a Float32Array for inputs[0].data (dtype float32) but received typed array',
  ],
  [
    'int64 data in an Int32Array',
    [{ dtype: 'int64', shape: [3], data: new Int32Array(3) }],
    TypeError,
    'Expected a BigInt64Array for inputs[0].data (dtype int64) but received typed array',
  ],
  [
    'bool data in an Int8Array',
    [{ dtype: 'bool', shape: [3], data: new Int8Array(3) }],
    TypeError,
    'Expected a Uint8Array for inputs[0].data (dtype bool) but received typed array',
  ],
  [
    'data in a plain array',
    [{ dtype: 'float32', shape: [3], data: [1, 2, 3] }],
    TypeError,
    'Expected a Float32Array for inputs[0].data (dtype float32) but received array',
  ],
  [
    'data in a DataView',
    [{ dtype: 'float32', shape: [3], data: new DataView(new ArrayBuffer(12)) }],
    TypeError,
    'Expected a Float32Array for inputs[0].data (dtype float32) but received object',
  ],
  ['missing data', [{ dtype: 'float32', shape: [3] }], TypeError, 'Expected a Float32Array for inputs[0].data (dtype float32) but received undefined'],
  [
    'fewer elements than the shape',
    [{ dtype: 'float32', shape: [2, 2], data: f32(3) }],
    RangeError,
    'Expected 4 elements for inputs[0] of shape [2,2] but its data holds 3',
  ],
  [
    'more elements than the shape',
    [{ dtype: 'float32', shape: [2], data: f32(3) }],
    RangeError,
    'Expected 2 elements for inputs[0] of shape [2] but its data holds 3',
  ],
  [
    'a shape whose size overflows 64 bits',
    [{ dtype: 'float32', shape: [2 ** 40, 2 ** 40, 2 ** 40], data: f32(3) }],
    RangeError,
    /^Expected \d+ elements for inputs\[0\] of shape \[1099511627776,1099511627776,1099511627776\] but its data holds 3$/,
  ],
  [
    'bool data with a 2',
    [{ dtype: 'bool', shape: [3], data: Uint8Array.of(0, 1, 2) }],
    RangeError,
    'Expected only 0 and 1 in the data of bool inputs[0] but element 2 is 2',
  ],
  [
    'bool data with a 255',
    [{ dtype: 'bool', shape: [2], data: Uint8Array.of(255, 0) }],
    RangeError,
    'Expected only 0 and 1 in the data of bool inputs[0] but element 0 is 255',
  ],
  [
    'a detached ArrayBuffer',
    [good(), { dtype: 'float32', shape: [3], data: detached(3) }],
    RangeError,
    'Expected 3 elements for inputs[1] of shape [3] but its data holds 0',
  ],
];

describe('native forward refuses malformed inputs synchronously', () => {
  it.each(malformed)('%s', (_what, inputs, ErrorClass, message) => {
    let result: unknown;
    expect(() => {
      result = model.forward(inputs as never);
    }).toThrow(ErrorClass);
    expect(result).toBeUndefined();
    expect(() => model.forward(inputs as never)).toThrow(message);
  });

  // null and arrays are arguments of their own (None, lists) for models whose schema takes them: checked
  // against the schema on the inference thread (native/forward_args.cc), so they reject.
  it.each([
    ['null', [null, good()], 'Expected Tensor for inputs[0] (a) but received null'],
    ['an array', [[1, 2], good()], 'Expected Tensor for inputs[0] (a) but received an array'],
    ['a number', [good(), 3], 'Expected Tensor for inputs[1] (b) but received the number 3'],
    ['one input too many', [good(), good(), good()], 'The model takes 2 inputs (a, b) but received 3'],
  ])('an input that is %s rejects with ERR_INVALID_ARGUMENT', async (_what, inputs, message) => {
    await expect(model.forward(inputs as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message });
  });

  it('an exception thrown by a getter of the input propagates as it is', () => {
    const input = {
      get dtype(): string {
        throw new Error('boom from a getter');
      },
      shape: [3],
      data: f32(3),
    };
    expect(() => model.forward([input] as never)).toThrow('boom from a getter');
  });

  it('a typed array over a SharedArrayBuffer is read like any other', async () => {
    const shared = new Float32Array(new SharedArrayBuffer(12));
    shared.set([1, 2, 3]);
    const result = await model.forward([
      { dtype: 'float32', shape: [3], data: shared },
      { dtype: 'float32', shape: [3], data: Float32Array.from([10, 20, 30]) },
    ] as never);
    expect(Array.from(result.tensors[0].data as Float32Array)).toEqual([11, 22, 33]);
  });

  it('a detached empty array with a zero dimension is a valid empty tensor', async () => {
    const result = await model.forward([
      { dtype: 'float32', shape: [0], data: detached(0) },
      { dtype: 'float32', shape: [0], data: f32(0) },
    ] as never);
    expect(result.kind).toBe('tuple');
    expect(result.tensors.map((t) => t.shape)).toEqual([[0], [0]]);
  });

  it('the model still works after all of that, and gives the raw result shape', async () => {
    const example = exampleJson('add_mul');
    const result = await model.forward(example.inputs.map((t) => ({ dtype: t.dtype, shape: t.shape, data: Float32Array.from(t.data) })) as never);
    expect(result.kind).toBe('tuple');
    expect(result.tensors).toHaveLength(2);
    result.tensors.forEach((t, i) => {
      const want = example.output.tensors[i];
      expect(t.dtype).toBe('float32');
      expect(t.shape).toEqual(want.shape);
      expect(t.data).toBeInstanceOf(Float32Array);
      expect('name' in t).toBe(false);
      Array.from(t.data as Float32Array).forEach((v, k) => {
        expect(Math.abs(v - want.data[k])).toBeLessThanOrEqual(1e-6);
      });
    });
  });

  it('info() of the raw model', () => {
    expect(model.info()).toMatchObject({
      path: modelPath('add_mul'),
      device: 'cpu',
      threads: 1,
      optimized: true,
      disposed: false,
    });
  });
});

describe('native load refuses malformed arguments', () => {
  it('a path that is not a string: TypeError at once', () => {
    expect(() => native.load(42 as never, { device: 'cpu', threads: 1 })).toThrow(new TypeError('Expected a string for path'));
  });

  it.each([
    ['device 7', { device: 7, threads: 1 }, TypeError, 'Expected a string for device'],
    ['threads -1', { device: 'cpu', threads: -1 }, RangeError, 'Expected an integer between 0 and 1024 for threads'],
    ['threads 1.5', { device: 'cpu', threads: 1.5 }, RangeError, 'Expected an integer between 0 and 1024 for threads'],
    ['threads 1e12', { device: 'cpu', threads: 1e12 }, RangeError, 'Expected an integer between 0 and 1024 for threads'],
    ["threads '1'", { device: 'cpu', threads: '1' }, RangeError, 'Expected an integer between 0 and 1024 for threads'],
    ["optimize 'yes'", { device: 'cpu', threads: 1, optimize: 'yes' }, TypeError, 'Expected a boolean for optimize'],
  ] as const)('%s: thrown at once', (_what, options, ErrorClass, message) => {
    expect(() => native.load(modelPath('add_mul'), options as never)).toThrow(ErrorClass);
    expect(() => native.load(modelPath('add_mul'), options as never)).toThrow(message);
  });

  it.each(['gpu', 'cuda:', 'cuda:x', 'cuda:12345', 'CPU'])("device '%s': rejects with ERR_INVALID_DEVICE", async (device) => {
    const err = await native.load(modelPath('add_mul'), { device, threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    expect((err as TorchError).code).toBe('ERR_INVALID_DEVICE');
    expect((err as TorchError).message).toBe(`Unknown device '${device}': expected auto, cpu, cuda or cuda:N`);
  });

  it('threads 0 leaves LibTorch its default', async () => {
    const m = await native.load(modelPath('identity'), { device: 'cpu', threads: 0 });
    expect(m.info().threads).toBe(0);
    const result = await m.forward([{ dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) }]);
    expect(Array.from(result.tensors[0].data as Float32Array)).toEqual([1, 2]);
    await m.dispose();
    expect(m.info().disposed).toBe(true);
  });
});
