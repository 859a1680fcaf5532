// TorchModel#forward and #forwardNamed against what eager PyTorch computed (test/fixtures/make_models.py):
// every model and example, every output kind, every dtype in and out. Models load on TEST_DEVICE
// (TORCH_NODE_TEST_DEVICE, default cpu).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Tensor, TorchError, TorchModel } from '../../src/index.js';
import {
  TEST_DEVICE,
  TEST_DEVICE_NAME,
  TOLERANCE,
  exampleInputs,
  exampleJson,
  expectOutputs,
  modelJson,
  modelNames,
  modelPath,
  tensorMismatch,
  toTensor,
} from '../helpers/fixtures.js';

const loaded = new Map<string, TorchModel>();

async function model(name: string): Promise<TorchModel> {
  let m = loaded.get(name);
  if (!m) {
    m = await TorchModel.load(modelPath(name), { device: TEST_DEVICE });
    loaded.set(name, m);
  }
  return m;
}

afterAll(async () => {
  await Promise.all([...loaded.values()].map((m) => m.dispose()));
});

describe(`every fixture model gives eager PyTorch's outputs (device ${TEST_DEVICE}, tolerance ${TOLERANCE})`, () => {
  it('has the fixture models this suite is about', () => {
    expect(modelNames().sort()).toEqual(['add_mul', 'convnet', 'dict_out', 'dtypes', 'embed', 'identity', 'list_out', 'raises', 'slow', 'warns'].sort());
  });

  const cases = modelNames().flatMap((name) => modelJson(name).examples.map((e) => [name, e.name] as const));
  it.each(cases)('%s (%s example)', async (name, example) => {
    const m = await model(name);
    expect(m.info.device).toBe(TEST_DEVICE_NAME);
    const want = exampleJson(name, example).output;
    const outputs = await m.forward(exampleInputs(name, example));
    expectOutputs(outputs, want, TOLERANCE, `${name}/${example}`);
  });
});

describe('output kinds', () => {
  it('a single tensor gives a list of one unnamed tensor', async () => {
    const outputs = await (await model('embed')).forward(exampleInputs('embed'));
    expect(outputs).toHaveLength(1);
    expect(outputs[0]).toBeInstanceOf(Tensor);
    expect(outputs[0].name).toBeUndefined();
    expect(outputs[0].shape).toEqual([2, 5, 4]);
  });

  it('a tuple gives its elements in order, unnamed', async () => {
    const [a, b] = exampleInputs('add_mul');
    const [sum, product] = await (await model('add_mul')).forward([a, b]);
    expect(sum.name).toBeUndefined();
    expect(product.name).toBeUndefined();
    for (let i = 0; i < a.size; i++) {
      expect(sum.data[i]).toBeCloseTo(Number(a.data[i]) + Number(b.data[i]), 5);
      expect(product.data[i]).toBeCloseTo(Number(a.data[i]) * Number(b.data[i]), 5);
    }
  });

  it('a list gives its elements in order', async () => {
    const [x] = exampleInputs('list_out');
    const [twice, minusOne] = await (await model('list_out')).forward([x]);
    expect(twice.shape).toEqual(x.shape);
    expect(twice.data[3]).toBeCloseTo(2 * Number(x.data[3]), 5);
    expect(minusOne.data[3]).toBeCloseTo(Number(x.data[3]) - 1, 5);
  });

  it('a dict gives its values in insertion order, named by their keys, from forward()', async () => {
    const outputs = await (await model('dict_out')).forward(exampleInputs('dict_out'));
    expect(outputs.map((t) => t.name)).toEqual(['sum', 'max']);
    expect(outputs.map((t) => t.shape)).toEqual([[3], [3]]);
  });

  it('forwardNamed() gives the dict itself', async () => {
    const want = exampleJson('dict_out').output.tensors;
    const named = await (await model('dict_out')).forwardNamed(exampleInputs('dict_out'));
    expect(Object.keys(named)).toEqual(['sum', 'max']);
    for (const w of want) {
      expect(named[w.name as string].name).toBe(w.name);
      expect(tensorMismatch(named[w.name as string], w, TOLERANCE)).toBeUndefined();
    }
  });

  it('forwardNamed() on a model that returns a tuple rejects with ERR_UNSUPPORTED_OUTPUT', async () => {
    const err = await (await model('add_mul')).forwardNamed(exampleInputs('add_mul')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    expect((err as TorchError).code).toBe('ERR_UNSUPPORTED_OUTPUT');
    expect((err as TorchError).message).toMatch(/returned a tuple; use forward\(\)/);
    expect((err as TorchError).message).toContain(modelPath('add_mul'));
  });

  it('forwardNamed() on a model that returns a list names the kind', async () => {
    await expect((await model('list_out')).forwardNamed(exampleInputs('list_out'))).rejects.toThrow(/returned a list; use forward\(\)/);
  });
});

describe('dtypes in and out', () => {
  it('every dtype goes in and comes out in its own typed array', async () => {
    const inputs = exampleInputs('dtypes');
    expect(inputs.map((t) => t.dtype)).toEqual(['float32', 'float64', 'int32', 'int64', 'uint8', 'bool']);
    const outputs = await (await model('dtypes')).forward(inputs);
    expect(outputs.map((t) => t.dtype)).toEqual(['float32', 'float64', 'int32', 'int64', 'uint8', 'bool']);
    const arrays = [Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Uint8Array];
    outputs.forEach((t, i) => {
      expect(t.data).toBeInstanceOf(arrays[i]);
    });
  });

  it('int64 keeps values beyond 32 bits exactly (BigInt64Array)', async () => {
    const [, , , i64] = exampleInputs('dtypes');
    const outputs = await (await model('dtypes')).forward(exampleInputs('dtypes'));
    const got = outputs[3].data as BigInt64Array;
    const input = i64.data as BigInt64Array;
    expect(Array.from(got)).toEqual(Array.from(input, (v) => v - 5n));
    expect(got).toContain(-(2n ** 40n) - 5n);
    expect(got).toContain(2n ** 52n - 5n);
  });

  it('int64 built from numbers and from bigints gives the same outputs', async () => {
    const m = await model('embed');
    const ids = exampleJson('embed').inputs[0];
    const fromNumbers = await m.forward([Tensor.int64(ids.data, ids.shape)]);
    const fromBigints = await m.forward([
      Tensor.int64(
        ids.data.map((v) => BigInt(v)),
        ids.shape,
      ),
    ]);
    expect(Array.from(fromNumbers[0].data as Float32Array)).toEqual(Array.from(fromBigints[0].data as Float32Array));
  });

  it('int32 ids work too (embedding takes Int and Long)', async () => {
    const ids = exampleJson('embed').inputs[0];
    const [out] = await (await model('embed')).forward([Tensor.int32(ids.data, ids.shape)]);
    expect(tensorMismatch(out, exampleJson('embed').output.tensors[0], TOLERANCE)).toBeUndefined();
  });

  it('bool comes out as 0 and 1 in a Uint8Array', async () => {
    const inputs = exampleInputs('dtypes');
    const outputs = await (await model('dtypes')).forward(inputs);
    const b = inputs[5].data as Uint8Array;
    expect(Array.from(outputs[5].data as Uint8Array)).toEqual(Array.from(b, (v) => 1 - v));
  });

  it('uint8 floor division stays uint8 (255 // 2 is 127)', async () => {
    const outputs = await (await model('dtypes')).forward(exampleInputs('dtypes'));
    expect(Array.from(outputs[4].data as Uint8Array)).toEqual([0, 0, 1, 63, 127, 127]);
  });

  it('reads a typed array at its byte offset (a subarray of a larger buffer)', async () => {
    const [a, b] = exampleJson('add_mul').inputs;
    const padded = new Float32Array(4 + a.data.length + 4).fill(1000);
    padded.set(a.data, 4);
    const view = padded.subarray(4, 4 + a.data.length);
    expect(view.byteOffset).toBe(16);
    const outputs = await (await model('add_mul')).forward([Tensor.float32(view, a.shape), toTensor(b)]);
    expectOutputs(outputs, exampleJson('add_mul').output, TOLERANCE);
  });

  it('empty tensors (a zero dimension) go in and come out', async () => {
    const [sum, product] = await (await model('add_mul')).forward([Tensor.float32(new Float32Array(0), [0, 3]), Tensor.float32(new Float32Array(0), [0, 3])]);
    expect(sum.shape).toEqual([0, 3]);
    expect(sum.size).toBe(0);
    expect(product.data).toBeInstanceOf(Float32Array);
  });

  it('broadcasting follows LibTorch: [2, 3] + [3]', async () => {
    const [sum] = await (await model('add_mul')).forward([Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]), Tensor.float32([10, 20, 30])]);
    expect(sum.shape).toEqual([2, 3]);
    expect(sum.toArray()).toEqual([11, 22, 33, 14, 25, 36]);
  });
});

describe('models that reject their inputs', () => {
  it('a wrong shape rejects with ERR_FORWARD and LibTorch message', async () => {
    const err = await (await model('add_mul'))
      .forward([Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]), Tensor.float32([1, 2, 3, 4, 5, 6], [3, 2])])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    expect((err as TorchError).code).toBe('ERR_FORWARD');
    expect((err as TorchError).message).toMatch(/The size of tensor a \(3\) must match the size of tensor b \(2\) at non-singleton dimension 1/);
    // the full text, with TorchScript's traceback but not LibTorch's C++ backtrace
    expect((err as TorchError).details).toContain('torch.add(a, b)');
    expect((err as TorchError).details).not.toMatch(/Exception raised from|frame #\d/);
  });

  it('a wrong number of channels rejects with the convolution message', async () => {
    const err = await (await model('convnet')).forward([Tensor.float32(new Float32Array(4 * 8 * 8), [1, 4, 8, 8])]).catch((e: unknown) => e);
    expect((err as TorchError).code).toBe('ERR_FORWARD');
    expect((err as TorchError).message).toMatch(/expected input\[1, 4, 8, 8\] to have 3 channels, but got 4/);
  });

  it('a dtype the model does not take rejects with ERR_FORWARD (float ids into an embedding)', async () => {
    const err = await (await model('embed')).forward([Tensor.float32([1, 2, 3])]).catch((e: unknown) => e);
    expect((err as TorchError).code).toBe('ERR_FORWARD');
    expect((err as TorchError).message).toMatch(/'indices' to have one of the following scalar types: Long, Int/);
  });

  it("a missing argument is refused at once, against forward's schema, naming the inputs", async () => {
    const m = await model('add_mul');
    expect(() => m.forward([Tensor.float32([1])])).toThrow(new RangeError('The model takes 2 inputs (a, b) but received 1'));
  });

  it("the model's own ValueError rejects with ERR_FORWARD and its message, and the model still works", async () => {
    const m = await model('raises');
    const bad = modelJson('raises').bad_inputs!.map(toTensor);
    const err = await m.forward(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    expect((err as TorchError).code).toBe('ERR_FORWARD');
    expect((err as TorchError).message).toContain('negative input');
    expect((err as TorchError).message).toMatch(/ValueError/);
    // the same model, right after
    const outputs = await m.forward(exampleInputs('raises'));
    expectOutputs(outputs, exampleJson('raises').output, TOLERANCE);
    // and again the error: nothing was left half-done
    await expect(m.forward(bad)).rejects.toThrow('negative input');
  });
});

describe('outputs own their memory', () => {
  let identity: TorchModel;
  let identityUnoptimized: TorchModel;
  beforeAll(async () => {
    identity = await TorchModel.load(modelPath('identity'), { device: TEST_DEVICE });
    identityUnoptimized = await TorchModel.load(modelPath('identity'), { device: TEST_DEVICE, optimize: false });
  });
  afterAll(async () => {
    await identity.dispose();
    await identityUnoptimized.dispose();
  });

  it.each([
    ['optimized', () => identity],
    ['not optimized', () => identityUnoptimized],
  ])('the identity model (%s) returns a copy, not the input memory', async (_label, get) => {
    const input = Tensor.float32([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]);
    const [out] = await get().forward([input]);
    expect(out.toArray()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(out.data.buffer).not.toBe(input.data.buffer);
    (input.data as Float32Array).fill(-1);
    expect(out.toArray()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    (out.data as Float32Array).fill(42);
    expect(input.toArray()).toEqual(new Array(8).fill(-1));
  });

  it('two outputs of one forward do not share memory', async () => {
    const [a, b] = exampleInputs('add_mul');
    const [sum, product] = await (await model('add_mul')).forward([a, b]);
    const before = product.toArray();
    (sum.data as Float32Array).fill(0);
    expect(product.toArray()).toEqual(before);
  });

  it('an output does not change when the same model runs again', async () => {
    const m = await model('list_out');
    const [first] = await m.forward([Tensor.float32([1, 2, 3])]);
    await m.forward([Tensor.float32([7, 8, 9])]);
    expect(first.toArray()).toEqual([2, 4, 6]);
  });
});
