// TorchModel's inputs checked against forward's schema (src/torch/forward-args.ts), in TypeScript first and
// again in the addon (native/forward_args.cc): the count with defaults, every kind of non-tensor argument
// (int, float, bool, str, List[int], Optional[Tensor]) passed as plain JavaScript values, inputs by name, one
// budget of list elements per forward (MAX_LIST_ELEMENTS, all lists at every level together, checked before the
// elements are visited or copied), dtype failures explained with the input's name, and loading a model from a
// Buffer.
import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Tensor, TorchError, TorchModel } from '../../src/index.js';
import { OnnxModel } from '../../src/onnx/index.js';
import { binding } from '../../src/torch/binding.js';
import { forwardArgs, MAX_LIST_ELEMENTS, type NativeArgument } from '../../src/torch/forward-args.js';
import { filePath, modelPath } from '../helpers/fixtures.js';
import { reachPath } from '../helpers/reach.js';

const x = () => Tensor.float32([1, 2, 3, 4], [2, 2]);
let args: TorchModel;

beforeAll(async () => {
  args = await TorchModel.load(reachPath('args'), { device: 'cpu', threads: 1 });
});

afterAll(async () => {
  await args?.dispose();
});

/** The fixture's forward (make_models.py: Args), in JavaScript, on x = [[1, 2], [3, 4]]. */
function expectedArgs(n: number, dims: number[], scale = 0.5, flag = false, mode = 'sum', bias?: number[]): { y: number[]; reduced: number[] } {
  const y = [1, 2, 3, 4].map((v, i) => (flag ? -1 : 1) * v * scale * n + (bias ? bias[i % 2] : 0));
  const at = (r: number, c: number) => y[r * 2 + c];
  const reduce = (a: number, b: number) => (mode === 'sum' ? a + b : Math.max(a, b));
  const reduced = dims[0] === 1 ? [reduce(at(0, 0), at(0, 1)), reduce(at(1, 0), at(1, 1))] : [reduce(at(0, 0), at(1, 0)), reduce(at(0, 1), at(1, 1))];
  return { y, reduced };
}

async function run(inputs: Parameters<TorchModel['forwardNamed']>[0]): Promise<{ y: number[]; reduced: number[] }> {
  const out = await args.forwardNamed(inputs);
  return { y: out.y.toArray(), reduced: out.reduced.toArray() };
}

describe('non-tensor arguments, from the schema', () => {
  it("describes forward's arguments: names, TorchScript types, defaults; no output names", () => {
    expect(args.inputNames).toEqual(['x', 'n', 'dims', 'scale', 'flag', 'mode', 'bias']);
    expect(args.inputs.map((i) => `${i.name}: ${i.type}${i.optional ? ' = default' : ''}`)).toEqual([
      'x: Tensor',
      'n: int',
      'dims: List[int]',
      'scale: float = default',
      'flag: bool = default',
      'mode: str = default',
      'bias: Optional[Tensor] = default',
    ]);
    expect(args.info.outputType).toBe('Dict[str, Tensor]');
    expect(args.outputNames).toEqual([]);
    expect(args.outputs).toEqual([]);
  });

  it('positional: the defaults apply to what is left out', async () => {
    expect(await run([x(), 2, [1]])).toEqual(expectedArgs(2, [1]));
    expect(await run([x(), 3, [0], 2])).toEqual(expectedArgs(3, [0], 2));
  });

  it('int (a number or a bigint), float, bool, str, List[int], Optional[Tensor] (a tensor or null)', async () => {
    expect(await run([x(), 2n, [0], 1.5, true, 'max', Tensor.float32([10, 20])])).toEqual(expectedArgs(2, [0], 1.5, true, 'max', [10, 20]));
    expect(await run([x(), 1, [1], 1, false, 'sum', null])).toEqual(expectedArgs(1, [1], 1));
  });

  it('by name, in any order, leaving out any argument that has a default', async () => {
    expect(await run({ mode: 'max', dims: [0], x: x(), n: 2 })).toEqual(expectedArgs(2, [0], 0.5, false, 'max'));
    // flag given, scale (before it) left out: its default applies
    expect(await run({ x: x(), n: 1, dims: [1], flag: true })).toEqual(expectedArgs(1, [1], 0.5, true));
  });

  it.each([
    [[x(), 1.5, [1]], RangeError, 'Expected an int (a safe integer, or a bigint) for inputs[1] (n) but received 1.5 of type number'],
    [[x(), '2', [1]], TypeError, "Expected an int (a number or a bigint) for inputs[1] (n) but received '2' of type string"],
    [[x(), 2, 1], TypeError, 'Expected a List[int] (an array) for inputs[2] (dims) but received 1 of type number'],
    [[x(), 2, [1, 0.5]], RangeError, 'Expected an int (a safe integer, or a bigint) for inputs[2] (dims)[1] but received 0.5 of type number'],
    [[x(), 2, [1], 'a'], TypeError, "Expected a float (a number) for inputs[3] (scale) but received 'a' of type string"],
    [[x(), 2, [1], 1, 1], TypeError, 'Expected a bool (true or false) for inputs[4] (flag) but received 1 of type number'],
    [[x(), 2, [1], 1, true, 3], TypeError, 'Expected a str (a string) for inputs[5] (mode) but received 3 of type number'],
    [[x(), 2, [1], 1, true, 'sum', 3], TypeError, 'Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[6] (bias) but received 3 of type number'],
    [[[1, 2], 2, [1]], TypeError, 'Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[0] (x) but received an array of length 2'],
    [[x(), undefined, [1]], TypeError, 'Expected an int for inputs[1] (n) but received undefined'],
    [[x(), 2], RangeError, 'The model takes 3 to 7 inputs (x, n, dims, scale, flag, mode, bias) but received 2'],
    [[x(), 2, [1], 1, true, 'sum', null, 8], RangeError, 'The model takes 3 to 7 inputs (x, n, dims, scale, flag, mode, bias) but received 8'],
  ] as const)('%j is refused at once: %s', (inputs, ErrorClass, message) => {
    let thrown: unknown;
    try {
      args.forward(inputs as never);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ErrorClass);
    expect((thrown as Error).message).toBe(message);
    expect((thrown as { code?: string }).code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('List[Tensor] takes an array of tensors; an Optional without a default takes null, and must be given', async () => {
    const model = await TorchModel.load(reachPath('list_args'), { device: 'cpu', threads: 1 });
    try {
      expect(model.inputs.map((i) => [i.type, i.optional])).toEqual([
        ['List[Tensor]', false],
        ['Optional[int]', false],
      ]);
      const xs = [Tensor.float32([1, 2]), Tensor.float32([10, 20]), Tensor.float32([100, 200])];
      expect((await model.forward([xs, null]))[0].toArray()).toEqual([111, 222]);
      expect((await model.forward({ xs, k: 2 }))[0].toArray()).toEqual([222, 444]);
      expect(() => model.forward([xs])).toThrow(new RangeError('The model takes 2 inputs (xs, k) but received 1'));
      expect(() => model.forward([[xs[0], 3], null])).toThrow(
        new TypeError('Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[0] (xs)[1] but received 3 of type number'),
      );
      expect(() => model.forward([xs, 1.5])).toThrow(RangeError);
    } finally {
      await model.dispose();
    }
  });

  it('by name: an unknown name, or a required input left out, is refused at once', () => {
    expect(() => args.forward({ x: x(), n: 2, dims: [1], size: 3 })).toThrow(
      new TypeError("Unknown input 'size': the model takes 3 to 7 inputs (x, n, dims, scale, flag, mode, bias)"),
    );
    expect(() => args.forward({ x: x() })).toThrow(
      new TypeError('Missing inputs n, dims: the model takes 3 to 7 inputs (x, n, dims, scale, flag, mode, bias)'),
    );
  });
});

describe('list arguments: one budget of MAX_LIST_ELEMENTS list elements per forward, all lists together', () => {
  const listOfLists: NativeArgument[] = [{ name: 'xss', type: 'List[List[int]]' }];

  it('a list of 2^20 + 1 ints is refused at once, naming the argument (RangeError, ERR_INVALID_ARGUMENT)', () => {
    let thrown: unknown;
    try {
      args.forward([x(), 2, new Array(2 ** 20 + 1).fill(1)]);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(RangeError);
    expect(thrown).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message:
        'Expected at most 1048576 list elements (the lists of all inputs together, at every level) for inputs[2] (dims) but received at least 1048577: pass large data as a Tensor',
    });
    expect(MAX_LIST_ELEMENTS).toBe(2 ** 20);
  });

  it('the lists of all arguments count together, List[Tensor] included; within the budget they pass', async () => {
    const twoLists: NativeArgument[] = [
      { name: 'a', type: 'List[int]' },
      { name: 'b', type: 'List[float]' },
    ];
    const half = new Array(2 ** 19).fill(1);
    expect(forwardArgs([half, half], twoLists)).toHaveLength(2); // 2^20 in all: the budget exactly
    expect(() => forwardArgs([half, [...half, 1]], twoLists)).toThrow(
      new RangeError(
        'Expected at most 1048576 list elements (the lists of all inputs together, at every level) for inputs[1] (b) but received at least 1048577: pass large data as a Tensor',
      ),
    );
    const model = await TorchModel.load(reachPath('list_args'), { device: 'cpu', threads: 1 });
    try {
      const xs = new Array(2 ** 20 + 1).fill(Tensor.float32([1, 2])); // List[Tensor]: its tensors are list elements too
      expect(() => model.forward([xs, null])).toThrow(/^Expected at most 1048576 list elements .* for inputs\[0\] \(xs\) but received at least 1048577/);
    } finally {
      await model.dispose();
    }
  });

  it('a List[List[int]] whose outer list repeats one inner array is refused from the count, without visiting the elements', () => {
    // Two times 2^19 (the TypeScript check visited every element and let them through to the addon); 2^20 times
    // 2^20 (2^40: its forEach would never end) is refused as soon.
    const half = new Array(2 ** 19).fill(1);
    expect(() => forwardArgs([[half, half]], listOfLists)).toThrow(
      'for inputs[0] (xss)[1] but received at least 1048578: pass large data as a Tensor', // 2 + 2^19 + 2^19
    );
    const inner = new Array(2 ** 20).fill(1);
    const started = performance.now();
    let thrown: unknown;
    try {
      forwardArgs([new Array(2 ** 20).fill(inner)], listOfLists);
    } catch (err) {
      thrown = err;
    }
    expect(performance.now() - started).toBeLessThan(1000); // it stops at the first inner list past the budget
    expect(thrown).toBeInstanceOf(RangeError);
    expect(thrown).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('for inputs[0] (xss)[0] but received at least') });
    // within the budget, a list of lists passes
    expect(forwardArgs([[[1, 2], [3]]], listOfLists)).toEqual([[[1, 2], [3]]]);
  });

  it('warm-up inputs are counted the same way, before the model loads', () => {
    const inner = new Array(2 ** 20).fill(1);
    expect(() => TorchModel.load(reachPath('args'), { warmup: { inputs: [x(), 2, new Array(2 ** 20).fill(inner)] } })).toThrow(
      /^Expected at most 1048576 list elements .* for inputs\[2\]\[0\] but received at least 2097152/,
    );
  });
});

describe('warm-up forwards take the same inputs', () => {
  it('non-tensor arguments and names; a warm-up that breaks the schema rejects the load with its error', async () => {
    const warmed = await TorchModel.load(reachPath('args'), { device: 'cpu', threads: 1, warmup: { inputs: { x: x(), n: 2, dims: [1] }, runs: 2 } });
    await warmed.dispose();
    await expect(TorchModel.load(reachPath('args'), { device: 'cpu', threads: 1, warmup: { inputs: [x(), 2] } })).rejects.toThrow(
      new RangeError('The model takes 3 to 7 inputs (x, n, dims, scale, flag, mode, bias) but received 2'),
    );
    // what can never be an input is refused at once, before the model loads
    expect(() => TorchModel.load(reachPath('args'), { warmup: { inputs: [x(), 2, [new Float32Array(1) as never]] } })).toThrow(
      new TypeError('Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[2][0] but received a Float32Array'),
    );
  });
});

describe('the addon checks the same again (what reaches it without the TypeScript checks)', () => {
  let native: Awaited<ReturnType<ReturnType<typeof binding>['binding']['load']>>;
  beforeAll(async () => {
    native = await binding().binding.load(reachPath('args'), { device: 'cpu', threads: 1 });
  });
  afterAll(async () => {
    await native?.dispose();
  });

  it.each([
    [[x(), 'a', [1]], 'Expected int for inputs[1] (n) but received a string'],
    [[x(), 2.5, [1]], 'Expected int for inputs[1] (n) but received the number 2.5'],
    [[1, 2, [1]], 'Expected Tensor for inputs[0] (x) but received the number 1'],
    [[x(), 2, [1, 'b']], 'Expected int for inputs[2] (dims)[1] but received a string'],
    [[x(), 2, [1], 1, true, 'sum', [x()]], 'Expected Tensor for inputs[6] (bias) but received an array'],
    [[x(), 2], 'The model takes 3 to 7 inputs (x, n, dims, scale, flag, mode, bias) but received 2'],
    [[x(), undefined, [1]], 'Expected a value for inputs[1] (n) but received none'],
  ])('%j rejects with ERR_INVALID_ARGUMENT', async (inputs, message) => {
    await expect(native.forward(inputs)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message });
  });

  it('arrays nested deeper than 4, or containing themselves, are refused at once', () => {
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => native.forward([x(), 2, cycle])).toThrow(RangeError);
    expect(() => native.forward([x(), 2, [[[[[1]]]]]])).toThrow('Expected at most 4 levels of arrays for inputs[2]');
  });

  it('list elements past the budget (2^20 in all) are refused at once, with ERR_INVALID_ARGUMENT, before anything is copied', () => {
    const refused = (inputs: unknown[]): unknown => {
      try {
        native.forward(inputs);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const flat = refused([x(), 2, new Array(2 ** 20 + 1).fill(1)]);
    expect(flat).toBeInstanceOf(RangeError);
    expect(flat).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message:
        'Expected at most 1048576 list elements (the lists of all inputs together, at every level) for inputs[2] but received at least 1048577: pass large data as a tensor',
    });
    // One list of two lists of 2^19: each was within the old limit per list, and the addon copied them all (the
    // schema's check then rejected the nested list, asynchronously).
    const half = new Array(2 ** 19).fill(1);
    expect(refused([x(), 2, [half, half]])).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringContaining('for inputs[2][1] but received at least 1048578'),
    });
    const inner = new Array(2 ** 20).fill(1);
    // One inner array 2^20 times (2^40 elements: the addon would have copied until memory ran out): refused as soon.
    const started = performance.now();
    expect(refused([x(), 2, new Array(2 ** 20).fill(inner)])).toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("the addon's other argument mistakes carry the code too", () => {
    expect(() => native.forward([{ dtype: 'float32', shape: [3], data: new Float32Array(2) }])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: 'Expected 3 elements for inputs[0] of shape [3] but its data holds 2' }),
    );
  });

  it('a bigint beyond int64 is refused at once', () => {
    expect(() => native.forward([x(), 2n ** 64n, [1]])).toThrow(new RangeError(`Expected a bigint within int64 for inputs[1] but received ${2n ** 64n}`));
  });

  it('still runs what is right', async () => {
    const result = await native.forward([x(), 2, [1]]);
    expect(result.kind).toBe('dict');
    expect(result.tensors.map((t) => t.name)).toEqual(['y', 'reduced']);
  });
});

describe('the same mistake reads the same in TorchModel and OnnxModel', () => {
  let torch: TorchModel;
  let onnx: OnnxModel;
  beforeAll(async () => {
    torch = await TorchModel.load(modelPath('add_mul'), { device: 'cpu', threads: 1 });
    onnx = await OnnxModel.load(reachPath('add_mul_onnx'), { threads: 1 });
  });
  afterAll(async () => {
    await Promise.all([torch?.dispose(), onnx?.dispose()]);
  });

  it.each([
    ['one input too few', (a: Tensor) => [a], new RangeError('The model takes 2 inputs (a, b) but received 1')],
    ['one too many', (a: Tensor) => [a, a, a], new RangeError('The model takes 2 inputs (a, b) but received 3')],
    [
      'a number for a tensor',
      (a: Tensor) => [a, 3],
      new TypeError('Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[1] (b) but received 3 of type number'),
    ],
    ['an unknown name', (a: Tensor) => ({ a, c: a }), new TypeError("Unknown input 'c': the model takes 2 inputs (a, b)")],
    ['a name left out', (a: Tensor) => ({ a }), new TypeError('Missing input b: the model takes 2 inputs (a, b)')],
  ])('%s', (_, make, error) => {
    const a = Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => torch.forward(make(a) as never)).toThrow(error);
    expect(() => onnx.forward(make(a) as never)).toThrow(error);
  });
});

describe("a dtype LibTorch refuses: the message names the input and the weights' dtype", () => {
  it.each([
    ['linear, not optimised', () => reachPath('linear'), false, 'inputs[0] (input) is float64', [1, 4]],
    ['linear, optimised', () => reachPath('linear'), true, 'inputs[0] (input) is float64', [1, 4]],
    ['convnet (batch norm: int64 buffers too), not optimised', () => modelPath('convnet'), false, 'inputs[0] (x) is float64', [1, 3, 8, 8]],
    ['convnet, optimised (MKLDNN)', () => modelPath('convnet'), true, 'inputs[0] (x) is float64', [1, 3, 8, 8]],
  ] as const)('%s', async (_, file, optimize, named, shape) => {
    const model = await TorchModel.load(file(), { device: 'cpu', threads: 1, optimize });
    try {
      expect(model.info.weightDtypes).toContain('float32');
      const size = (shape as readonly number[]).reduce((a, b) => a * b, 1);
      const failed = model.forward([Tensor.float64(new Float64Array(size), shape)]);
      await expect(failed).rejects.toBeInstanceOf(TorchError);
      await expect(failed).rejects.toMatchObject({ code: 'ERR_FORWARD' });
      const err = (await failed.catch((e: unknown) => e)) as TorchError;
      expect(err.message).toMatch(
        new RegExp(`^${named.replace(/[[\]()]/g, '\\$&')}, but the model's weights are float32: pass float32 tensors \\(LibTorch: .+\\)$`),
      );
      expect(err.details).not.toBe('');
      // float32 runs
      const [out] = await model.forward([Tensor.float32(new Float32Array(size), shape)]);
      expect(out.dtype).toBe('float32');
    } finally {
      await model.dispose();
    }
  });

  it("a model's own error is left as it is", async () => {
    const raises = await TorchModel.load(modelPath('raises'), { device: 'cpu', threads: 1 });
    try {
      await expect(raises.forward([Tensor.float32([-1, -2])])).rejects.toMatchObject({ message: expect.stringContaining('negative input') });
    } finally {
      await raises.dispose();
    }
  });
});

describe('loading from a Buffer', () => {
  it('gives the same model as its file; the bytes are copied as load() is called', async () => {
    const bytes = readFileSync(reachPath('linear'));
    const fromFile = await TorchModel.load(reachPath('linear'), { device: 'cpu', threads: 1 });
    const loading = TorchModel.load(bytes, { device: 'cpu', threads: 1 });
    bytes.fill(0); // the load reads its own copy
    const fromBytes = await loading;
    try {
      expect(fromBytes.info.path).toBe(`<${bytes.length} bytes in memory>`);
      expect(fromBytes.inputNames).toEqual(['input']);
      const input = Tensor.float32([1, 2, 3, 4], [1, 4]);
      const [[a], [b]] = await Promise.all([fromFile.forward([input]), fromBytes.forward([input])]);
      expect(b.data).toEqual(a.data);
    } finally {
      await Promise.all([fromFile.dispose(), fromBytes.dispose()]);
    }
  });

  it('bytes that are not TorchScript get the same checks as a file', async () => {
    await expect(TorchModel.load(Buffer.from('hello'), { device: 'cpu' })).rejects.toMatchObject({
      code: 'ERR_NOT_TORCHSCRIPT',
      message: '<5 bytes in memory> is not a TorchScript file (TorchScript files are zip archives)',
    });
    await expect(TorchModel.load(readFileSync(filePath('state_dict')), { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_NOT_TORCHSCRIPT' });
    await expect(TorchModel.load(new Uint8Array(0), { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_NOT_TORCHSCRIPT' });
    const truncated = readFileSync(filePath('truncated'));
    await expect(TorchModel.load(truncated, { device: 'cpu' })).rejects.toMatchObject({ code: 'ERR_MODEL_CORRUPT' });
    expect(() => TorchModel.load(new Float32Array(4) as never)).toThrow(TypeError);
  });
});
