// OnnxModel's reach (issue 21, item 5): input and output names and metadata, named inputs and outputs
// (forwardNamed), the inputs checked against the graph (count, dtype, rank, fixed dimensions) with the same
// messages as TorchModel's, float16/int8/int16 in and out, `device`, and loading from a Buffer; in a worker
// thread and on the main thread. Fixtures: test/fixtures/make_models.py (make_reach).
import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ModelError, OnnxModel, Tensor } from '../src/onnx/index.js';
import { reachPath } from './helpers/reach.js';

const ab = (rows = 2) => ({
  a: Tensor.float32(
    Array.from({ length: rows * 3 }, (_, i) => i + 1),
    [rows, 3],
  ),
  b: Tensor.float32(
    Array.from({ length: rows * 3 }, (_, i) => 10 * (i + 1)),
    [rows, 3],
  ),
});

describe.each(['worker', 'main'] as const)('OnnxModel, thread: %s', (thread) => {
  let addMul: OnnxModel;
  let small: OnnxModel;
  beforeAll(async () => {
    [addMul, small] = await Promise.all([
      OnnxModel.load(reachPath('add_mul_onnx'), { threads: 1, thread }),
      OnnxModel.load(reachPath('small_dtypes_onnx'), { threads: 1, thread, device: 'cpu' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([addMul?.dispose(), small?.dispose()]);
  });

  it('names and describes its inputs and outputs (dtype, shape with named dimensions)', () => {
    expect(addMul.inputNames).toEqual(['a', 'b']);
    expect(addMul.outputNames).toEqual(['sum', 'product']);
    expect(addMul.inputs).toEqual([
      { name: 'a', type: 'Tensor', dtype: 'float32', shape: ['batch', 3], optional: false },
      { name: 'b', type: 'Tensor', dtype: 'float32', shape: ['batch', 3], optional: false },
    ]);
    expect(addMul.outputs.map((o) => [o.name, o.dtype])).toEqual([
      ['sum', 'float32'],
      ['product', 'float32'],
    ]);
    expect(addMul.info.inputs).toBe(addMul.inputs);
    expect(small.inputs.map((i) => [i.name, i.dtype, i.shape])).toEqual([
      ['h', 'float16', [2, 3]],
      ['i8', 'int8', [2, 3]],
      ['i16', 'int16', [2, 3]],
    ]);
  });

  it('forwardNamed: inputs by name, outputs by name; forward gives them in order, named', async () => {
    const { a, b } = ab(2);
    const named = await addMul.forwardNamed({ b, a });
    expect(Object.keys(named)).toEqual(['sum', 'product']);
    expect(named.sum.toArray()).toEqual([11, 22, 33, 44, 55, 66]);
    expect(named.product.toArray()).toEqual([10, 40, 90, 160, 250, 360]);
    const [sum, product] = await addMul.forward([a, b]);
    expect([sum.name, product.name]).toEqual(['sum', 'product']);
    expect(sum.toArray()).toEqual(named.sum.toArray());
    // the named batch dimension takes any size
    const [big] = await addMul.forward(ab(5));
    expect(big.shape).toEqual([5, 3]);
  });

  it.each([
    [
      'a float64 input',
      () => [Tensor.float64(new Float64Array(6), [2, 3]), ab().b],
      TypeError,
      'Expected a float32 tensor for inputs[0] (a) but received a float64 tensor',
    ],
    [
      'a rank the graph does not take',
      () => [Tensor.float32(new Float32Array(3), [3]), ab().b],
      RangeError,
      'Expected 2 dimensions [batch, 3] for inputs[0] (a) but received shape [3]',
    ],
    [
      'a fixed dimension of another size',
      () => [ab().a, Tensor.float32(new Float32Array(4), [2, 2])],
      RangeError,
      'Expected shape [batch, 3] for inputs[1] (b) but received shape [2, 2] (dimension 1)',
    ],
    ['one input too many', () => [ab().a, ab().b, ab().b], RangeError, 'The model takes 2 inputs (a, b) but received 3'],
    ['an unknown name', () => ({ ...ab(), c: ab().a }), TypeError, "Unknown input 'c': the model takes 2 inputs (a, b)"],
    ['a number', () => [ab().a, 1], TypeError, 'Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[1] (b) but received 1 of type number'],
  ] as const)('%s is refused at once, nothing queued', (_what, make, ErrorClass, message) => {
    let thrown: unknown;
    try {
      addMul.forward(make() as never);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ErrorClass);
    expect((thrown as Error).message).toBe(message);
    expect((thrown as { code?: string }).code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('float16 (bits), int8 and int16 go in and come out in their own dtypes', async () => {
    const out = await small.forwardNamed({
      h: Tensor.float16([1, 2, 3, 4, 5, 6.5], [2, 3]),
      i8: Tensor.int8([1, -2, 3, -4, 5, -128], [2, 3]),
      i16: Tensor.int16([1, -2, 3, -4, 5, 32767], [2, 3]),
    });
    expect(out.h_t.dtype).toBe('float16');
    expect(out.h_t.data).toBeInstanceOf(Uint16Array);
    expect(out.h_t.shape).toEqual([3, 2]);
    expect(out.h_t.toArray()).toEqual([1, 4, 2, 5, 3, 6.5]);
    expect(out.h_float.dtype).toBe('float32');
    expect(out.h_float.toArray()).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect(out.i8_t.dtype).toBe('int8');
    expect(out.i8_t.toArray()).toEqual([1, -4, -2, 5, 3, -128]);
    expect(out.i16_t.dtype).toBe('int16');
    expect(out.i16_t.data).toBeInstanceOf(Int16Array);
    expect(out.i16_t.toArray()).toEqual([1, -4, -2, 5, 3, 32767]);
  });

  it('loads from a Buffer: the same model, `path` saying where it came from', async () => {
    const bytes = readFileSync(reachPath('add_mul_onnx'));
    const loading = OnnxModel.load(bytes, { threads: 1, thread });
    bytes.fill(0); // the load has its own copy
    const fromBytes = await loading;
    try {
      expect(fromBytes.info.path).toBe(`<${bytes.length} bytes in memory>`);
      expect(fromBytes.outputNames).toEqual(['sum', 'product']);
      const [sum] = await fromBytes.forward(ab());
      expect(sum.toArray()).toEqual([11, 22, 33, 44, 55, 66]);
    } finally {
      await fromBytes.dispose();
    }
    await expect(OnnxModel.load(Buffer.from('not a model'), { thread })).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
  });
});

describe('device', () => {
  it("'cpu' and 'auto' load on the CPU", async () => {
    for (const device of ['cpu', 'auto'] as const) {
      const model = await OnnxModel.load(reachPath('add_mul_onnx'), { threads: 1, device });
      expect(model.device).toBe('cpu');
      await model.dispose();
    }
  });

  it("'cuda' and 'cuda:N' reject with ERR_UNSUPPORTED_DEVICE, saying what runs where", async () => {
    for (const device of ['cuda', 'cuda:1'] as const) {
      const loading = OnnxModel.load(reachPath('add_mul_onnx'), { device });
      await expect(loading).rejects.toBeInstanceOf(ModelError);
      await expect(loading).rejects.toMatchObject({
        code: 'ERR_UNSUPPORTED_DEVICE',
        message: `OnnxModel runs on the CPU only (onnxruntime-node's CPU execution provider), not on ${device}: load it with device 'cpu', or run the TorchScript model with TorchModel on CUDA`,
      });
    }
  });

  it('a device that is no device at all is an argument mistake, as for TorchModel', () => {
    expect(() => OnnxModel.load(reachPath('add_mul_onnx'), { device: 'gpu' as never })).toThrow(
      new RangeError("Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received 'gpu' of type string"),
    );
  });
});
