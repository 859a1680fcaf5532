// TorchModel.load: its options and their checks, info(), optimisation, warm-up, and every kind of file
// that is not a loadable TorchScript model.
import { availableParallelism } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { Tensor, TorchError, TorchModel, runtimeInfo } from '../../src/index.js';
import { FIXTURES, TEST_DEVICE, TOLERANCE, exampleInputs, exampleJson, expectOutputs, filePath, maxAbsDiff, modelPath } from '../helpers/fixtures.js';

const LIBTORCH = runtimeInfo().libtorchVersion;

async function loadError(file: string, options = {}): Promise<TorchError> {
  const result = await TorchModel.load(file, options).then(
    async (m) => {
      await m.dispose();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(result, `loading ${file} should fail`).toBeInstanceOf(TorchError);
  return result as TorchError;
}

describe('load options are checked at once, before anything is loaded (a synchronous throw)', () => {
  const file = () => modelPath('add_mul');

  it.each([
    [
      'an unknown option key',
      { devcie: 'cpu' },
      TypeError,
      "Unknown option 'devcie' in the load options; expected one of device, threads, optimize, inferenceThread, warmup",
    ],
    ['threads 0', { threads: 0 }, RangeError, 'Expected an integer between 1 and 1024 for threads but received 0 of type number'],
    ['threads 1.5', { threads: 1.5 }, RangeError, 'Expected an integer between 1 and 1024 for threads but received 1.5 of type number'],
    ['threads 2000', { threads: 2000 }, RangeError, 'Expected an integer between 1 and 1024 for threads but received 2000 of type number'],
    ["threads '2'", { threads: '2' }, TypeError, "Expected an integer between 1 and 1024 for threads but received '2' of type string"],
    ["device 'gpu'", { device: 'gpu' }, RangeError, "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received 'gpu' of type string"],
    ["device 'cuda:'", { device: 'cuda:' }, RangeError, "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received 'cuda:' of type string"],
    ['device 0', { device: 0 }, TypeError, "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received 0 of type number"],
    ["optimize 'yes'", { optimize: 'yes' }, TypeError, "Expected a boolean for optimize but received 'yes' of type string"],
    ['warmup that is not an object', { warmup: [] }, TypeError, 'Expected an object {inputs, runs} for warmup but received an array of length 0'],
    ['warmup with an unknown key', { warmup: { inputs: [], count: 2 } }, TypeError, "Unknown option 'count' in warmup; expected one of inputs, runs"],
    [
      'warmup inputs that are not Tensors',
      { warmup: { inputs: [new Float32Array(3)] } },
      TypeError,
      'Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[0] but received a Float32Array',
    ],
    [
      'warmup runs -1',
      { warmup: { inputs: [], runs: -1 } },
      RangeError,
      'Expected an integer between 0 and 1000 for warmup.runs but received -1 of type number',
    ],
  ] as const)('throws on %s', (_label, options, ErrorClass, message) => {
    let err: unknown;
    try {
      void TorchModel.load(file(), options as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ErrorClass);
    expect(err).not.toBeInstanceOf(TorchError);
    expect((err as Error).message).toBe(message);
  });

  it('throws on options that are not an object', () => {
    expect(() => TorchModel.load(file(), 'cpu' as never)).toThrow(new TypeError("Expected an object for options but received 'cpu' of type string"));
  });

  it('throws on an empty path or a path that is not a string', () => {
    expect(() => TorchModel.load('')).toThrow(
      new TypeError("Expected a non-empty string or a Uint8Array (a Buffer) for the model path but received '' of type string"),
    );
    expect(() => TorchModel.load(42 as never)).toThrow(TypeError);
  });
});

describe('info', () => {
  it('describes a model loaded on the CPU', async () => {
    const m = await TorchModel.load(modelPath('add_mul'), { device: 'cpu', threads: 1 });
    try {
      expect(m.info).toEqual({
        path: modelPath('add_mul'),
        device: 'cpu',
        threads: 1,
        optimized: true,
        inferenceThread: availableParallelism() > 1 ? 'own' : 'shared', // 1 thread, below the cores: its own
        forwardSchema: 'forward(Tensor a, Tensor b) -> (Tensor, Tensor)',
        inputNames: ['a', 'b'],
        inputs: [
          { name: 'a', type: 'Tensor', dtype: null, shape: null, optional: false },
          { name: 'b', type: 'Tensor', dtype: null, shape: null, optional: false },
        ],
        outputType: 'Tuple[Tensor, Tensor]',
        weightDtypes: [],
        libtorchVersion: LIBTORCH,
      });
      expect(m.device).toBe('cpu');
      expect(Object.isFrozen(m.info)).toBe(true);
      expect(m.disposed).toBe(false);
    } finally {
      await m.dispose();
    }
  });

  it("defaults threads to the machine's available parallelism and optimize to on (CPU)", async () => {
    const m = await TorchModel.load(modelPath('embed'), { device: 'cpu' });
    expect(m.info.threads).toBe(availableParallelism());
    expect(m.info.optimized).toBe(true);
    expect(m.info.forwardSchema).toMatch(/^forward\(Tensor ids\) -> Tensor$/);
    expect(m.info.inputNames).toEqual(['ids']);
    await m.dispose();
  });

  it('resolves a relative path to an absolute one', async () => {
    const relative = path.relative(process.cwd(), modelPath('identity'));
    expect(path.isAbsolute(relative)).toBe(false);
    const m = await TorchModel.load(relative, { device: 'cpu', optimize: false });
    expect(m.info.path).toBe(modelPath('identity'));
    expect(m.info.optimized).toBe(false);
    // without the module's own `self` argument, also when the module is not frozen
    expect(m.info.forwardSchema).toBe('forward(Tensor x) -> Tensor');
    await m.dispose();
  });

  it("device 'auto' picks CUDA when it can be used, else the CPU", async () => {
    const m = await TorchModel.load(modelPath('identity'), { device: 'auto' });
    expect(m.device).toBe(runtimeInfo().cudaAvailable ? 'cuda:0' : 'cpu');
    await m.dispose();
  });

  it('libtorchVersion is the runtime version, like 1.13.0', () => {
    expect(LIBTORCH).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('optimisation (freeze + optimize_for_inference) keeps the outputs', () => {
  it.each(['batch1', 'batch8'])('convnet %s: optimized and not give eager outputs within 1e-5', async (example) => {
    const optimized = await TorchModel.load(modelPath('convnet'), { device: 'cpu', optimize: true });
    const plain = await TorchModel.load(modelPath('convnet'), { device: 'cpu', optimize: false });
    expect(optimized.info.optimized).toBe(true);
    expect(plain.info.optimized).toBe(false);
    const inputs = exampleInputs('convnet', example);
    const [a] = await optimized.forward(inputs);
    const [b] = await plain.forward(inputs);
    expect(a.shape).toEqual([example === 'batch1' ? 1 : 8, 3]);
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-5);
    expectOutputs([a], exampleJson('convnet', example).output, 1e-5, 'optimized');
    expectOutputs([b], exampleJson('convnet', example).output, 1e-5, 'not optimized');
    await Promise.all([optimized.dispose(), plain.dispose()]);
  });

  it('the batch dimension of the traced convnet stays dynamic after optimisation', async () => {
    const m = await TorchModel.load(modelPath('convnet'), { device: 'cpu' });
    for (const batch of [1, 3, 8]) {
      const [logits] = await m.forward([Tensor.float32(new Float32Array(batch * 3 * 8 * 8).fill(0.5), [batch, 3, 8, 8])]);
      expect(logits.shape).toEqual([batch, 3]);
    }
    await m.dispose();
  });
});

describe('warm-up', () => {
  it('runs the warm-up forwards and then works', async () => {
    const m = await TorchModel.load(modelPath('add_mul'), {
      device: TEST_DEVICE,
      warmup: { inputs: exampleInputs('add_mul'), runs: 3 },
    });
    expect(m.disposed).toBe(false);
    expectOutputs(await m.forward(exampleInputs('add_mul')), exampleJson('add_mul').output, TOLERANCE);
    await m.dispose();
  });

  it("rejects with the forward's error when the warm-up inputs are wrong", async () => {
    const err = await loadError(modelPath('add_mul'), {
      device: TEST_DEVICE,
      warmup: { inputs: [Tensor.float32([1, 2, 3]), Tensor.float32([1, 2])] },
    });
    expect(err.code).toBe('ERR_FORWARD');
    expect(err.message).toMatch(new RegExp(`^Warm-up forward of ${escapeRegExp(modelPath('add_mul'))} failed: `));
    expect(err.message).toMatch(/The size of tensor a \(3\) must match the size of tensor b \(2\)/);
    expect(err.details).toContain('torch.add(a, b)');
  });

  it("rejects with the model's own error (raises) during warm-up", async () => {
    const err = await loadError(modelPath('raises'), { warmup: { inputs: [Tensor.float32([-5])] } });
    expect(err.code).toBe('ERR_FORWARD');
    expect(err.message).toContain('negative input');
  });

  it('runs: 0 runs nothing (inputs that would fail are not used)', async () => {
    const m = await TorchModel.load(modelPath('raises'), { warmup: { inputs: [Tensor.float32([-5])], runs: 0 } });
    expect(m.disposed).toBe(false);
    await m.dispose();
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('files that cannot be loaded', () => {
  it('a missing file: ERR_MODEL_NOT_FOUND', async () => {
    const missing = path.join(FIXTURES, 'no_such_model.pt');
    const err = await loadError(missing);
    expect(err.code).toBe('ERR_MODEL_NOT_FOUND');
    expect(err.message).toBe(`Model file not found: ${missing}`);
  });

  it('a directory: ERR_MODEL_NOT_FOUND, not a regular file', async () => {
    const err = await loadError(FIXTURES);
    expect(err.code).toBe('ERR_MODEL_NOT_FOUND');
    expect(err.message).toBe(`Model path is not a regular file: ${FIXTURES}`);
  });

  it('an empty file: ERR_NOT_TORCHSCRIPT', async () => {
    const err = await loadError(filePath('empty'));
    expect(err.code).toBe('ERR_NOT_TORCHSCRIPT');
    expect(err.message).toBe(`${filePath('empty')} is empty, not a TorchScript file`);
  });

  it('random bytes: ERR_NOT_TORCHSCRIPT (not a zip archive)', async () => {
    const err = await loadError(filePath('random'));
    expect(err.code).toBe('ERR_NOT_TORCHSCRIPT');
    expect(err.message).toContain(filePath('random'));
    expect(err.message).toMatch(/not a TorchScript file \(TorchScript files are zip archives\)/);
  });

  it('a truncated TorchScript file: ERR_MODEL_CORRUPT', async () => {
    const err = await loadError(filePath('truncated'));
    expect(err.code).toBe('ERR_MODEL_CORRUPT');
    expect(err.message).toContain(filePath('truncated'));
    expect(err.message).toMatch(/truncated or corrupt/);
    expect(err.details).toMatch(/central directory/);
  });

  it.each(['state_dict', 'checkpoint'])('a %s saved with torch.save: ERR_NOT_TORCHSCRIPT and how to export', async (role) => {
    const err = await loadError(filePath(role));
    expect(err.code).toBe('ERR_NOT_TORCHSCRIPT');
    expect(err.message).toContain(filePath(role));
    expect(err.message).toMatch(/checkpoint saved with torch\.save/);
    expect(err.message).toMatch(/torch\.jit\.(trace|script)/);
    expect(err.message).toContain('torch.jit.save');
    expect(err.message).toContain('scripts/export_model.py');
  });

  it('a legacy (pre-zip) torch.save pickle: ERR_NOT_TORCHSCRIPT and how to export', async () => {
    const err = await loadError(filePath('legacy'));
    expect(err.code).toBe('ERR_NOT_TORCHSCRIPT');
    expect(err.message).toContain(filePath('legacy'));
    expect(err.message).toMatch(/legacy torch\.save format/);
    expect(err.message).toContain('torch.jit');
    expect(err.message).toContain('scripts/export_model.py');
  });

  it('a newer file format version: ERR_LIBTORCH_TOO_OLD naming the LibTorch version', async () => {
    const err = await loadError(filePath('newer_format'));
    expect(err.code).toBe('ERR_LIBTORCH_TOO_OLD');
    expect(err.message).toContain(filePath('newer_format'));
    expect(err.message).toContain(`LibTorch ${LIBTORCH}`);
    expect(err.message).toMatch(/version 99/);
  });

  it('an operator this LibTorch lacks: the message names the file and the operator', async () => {
    const err = await loadError(filePath('unknown_op'));
    expect(err.message).toContain(filePath('unknown_op'));
    expect(err.message).toContain('Unknown builtin op: aten::torch_node_op_from_the_future');
  });

  it('an operator this LibTorch lacks: ERR_LIBTORCH_TOO_OLD naming the LibTorch version', async () => {
    const err = await loadError(filePath('unknown_op'));
    expect(err.code).toBe('ERR_LIBTORCH_TOO_OLD');
    expect(err.message).toContain(`LibTorch than this addon's ${LIBTORCH}`);
  });

  it('after a failed load, loading a good model works', async () => {
    await loadError(filePath('truncated'));
    const m = await TorchModel.load(modelPath('add_mul'), { device: 'cpu' });
    expectOutputs(await m.forward(exampleInputs('add_mul')), exampleJson('add_mul').output, 1e-5);
    await m.dispose();
  });
});
