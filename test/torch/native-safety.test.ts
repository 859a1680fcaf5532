// The native layer's error paths, each provoked for real where it can be and by the addon's fault injection
// (binding().testing) where it cannot: a forward waiting in the queue reads the inputs as they were when it was
// called, even if the caller writes them or transfers their ArrayBuffer meanwhile; a promise whose value
// cannot be built (the error class throws, converting the outputs fails) still settles, and the process
// lives on; CUDA is probed once per process. (The bounded wait at exit is in exit.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runtimeInfo, Tensor, TorchError, TorchModel } from '../../src/index.js';
import { binding } from '../../src/torch/binding.js';
import { modelPath, TEST_DEVICE } from '../helpers/fixtures.js';
import { calibrateSlow, iterations, slowInput } from '../helpers/slow.js';

let addMul: TorchModel;
let raises: TorchModel;
let slow: TorchModel;
/** Iterations of the slow model for a forward of roughly 300 ms: time for the caller to act meanwhile. */
let slowN: number;

beforeAll(async () => {
  [addMul, raises, slow] = await Promise.all([
    TorchModel.load(modelPath('add_mul'), { device: TEST_DEVICE }),
    TorchModel.load(modelPath('raises'), { device: TEST_DEVICE }),
    TorchModel.load(modelPath('slow'), { device: TEST_DEVICE, threads: 1 }),
  ]);
  slowN = await calibrateSlow(slow, 300);
});

afterAll(async () => {
  await Promise.all([addMul.dispose(), raises.dispose(), slow.dispose()]);
});

/** Keeps the inference thread busy, so that the next forward waits in the queue. */
function occupy(): Promise<unknown> {
  return slow.forward([slowInput(), iterations(slowN)]);
}

describe('inputs of a forward that waits in the queue', () => {
  it('are the values passed, though the caller writes its arrays right after the call', async () => {
    const busy = occupy();
    const a = Float32Array.from([1, 2, 3]);
    const b = Float32Array.from([10, 20, 30]);
    const pending = addMul.forward([Tensor.float32(a), Tensor.float32(b)]);
    a.fill(-1000);
    b.fill(0);
    const [sum, product] = await pending;
    expect(Array.from(sum.data as Float32Array)).toEqual([11, 22, 33]);
    expect(Array.from(product.data as Float32Array)).toEqual([10, 40, 90]);
    await busy;
  });

  it("are the values passed, though the caller transfers the input's ArrayBuffer away and reuses its memory", async () => {
    const busy = occupy();
    const a = new Float32Array(1 << 20).fill(2); // 4 MiB: a block of its own, freed when its owner goes
    const b = new Float32Array(1 << 20).fill(3);
    const pending = addMul.forward([Tensor.float32(a), Tensor.float32(b)]);
    // The ArrayBuffer moves to a new owner (a's buffer is detached now), which overwrites the memory.
    const moved = new Float32Array(structuredClone(a.buffer, { transfer: [a.buffer] }));
    expect(a.length).toBe(0);
    moved.fill(-7);
    const [sum, product] = await pending;
    expect((sum.data as Float32Array).every((v) => v === 5)).toBe(true);
    expect((product.data as Float32Array).every((v) => v === 6)).toBe(true);
    await busy;
  });

  it('an input whose ArrayBuffer was detached before the call is refused at the call (it holds no elements now)', () => {
    const a = Float32Array.from([1, 2, 3]);
    const tensor = Tensor.float32(a);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    expect(() => addMul.forward([tensor, Tensor.float32([1, 2, 3])])).toThrow(/Expected 3 elements for inputs\[0\] of shape \[3\] but its data holds 0/);
  });
});

describe('a promise settles whatever fails while its value is built', () => {
  it('converting the outputs fails (out of memory, injected): the forward rejects with ERR_OUTPUT_CONVERSION; the next one works', async () => {
    binding().binding.testing.injectFault('output-conversion');
    const failed = addMul.forward([Tensor.float32([1, 2]), Tensor.float32([3, 4])]);
    await expect(failed).rejects.toMatchObject({ code: 'ERR_OUTPUT_CONVERSION', message: expect.stringContaining('std::bad_alloc') });
    const [sum] = await addMul.forward([Tensor.float32([1, 2]), Tensor.float32([3, 4])]);
    expect(Array.from(sum.data as Float32Array)).toEqual([4, 6]);
  });

  it("the error class's constructor throws: a failed forward, a failed load and a disposed model still reject, with the code", async () => {
    const native = binding().binding;
    class Broken extends Error {
      constructor() {
        super('never made');
        throw new Error('the error class is broken');
      }
    }
    const disposed = await TorchModel.load(modelPath('add_mul'), { device: 'cpu' });
    await disposed.dispose();
    native.setErrorClass(Broken as never);
    try {
      const forward = raises.forward([Tensor.float32([-1, -2])]);
      await expect(forward).rejects.toMatchObject({ code: 'ERR_FORWARD', message: expect.stringContaining('negative input') });
      await expect(forward).rejects.toThrow('the error class failed: the error class is broken');
      const load = native.load('/no/such/model.pt', { device: 'cpu', threads: 1 });
      await expect(load).rejects.toMatchObject({ code: 'ERR_MODEL_NOT_FOUND', message: expect.stringContaining('the error class failed') });
      const afterDispose = disposed.forward([Tensor.float32([1]), Tensor.float32([2])]);
      await expect(afterDispose).rejects.toMatchObject({ code: 'ERR_MODEL_DISPOSED', message: expect.stringContaining('the error class failed') });
      const blas = native.checkBlas(1);
      await expect(blas).resolves.toMatchObject({ cases: expect.any(Number) }); // a success needs no error class
    } finally {
      native.setErrorClass(TorchError);
    }
    await expect(raises.forward([Tensor.float32([-1])])).rejects.toBeInstanceOf(TorchError);
  });
});

describe('CUDA', () => {
  it('is probed once per process, however many runtimeInfo() calls and loads', async () => {
    runtimeInfo();
    const models = await Promise.all([TorchModel.load(modelPath('identity'), { device: 'cpu' }), TorchModel.load(modelPath('identity'))]);
    runtimeInfo();
    await Promise.all(models.map((m) => m.dispose()));
    expect(binding().binding.testing.cudaProbes()).toBe(1);
  });
});
