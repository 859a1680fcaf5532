// runtimeInfo(), the errors the addon makes, and CUDA: the CUDA comparison runs only where a CUDA device
// can be used; everywhere else, asking for CUDA must fail with ERR_CUDA_UNAVAILABLE.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { Tensor, TorchError, TorchModel, runtimeInfo } from '../../src/index.js';
import { exampleInputs, exampleJson, expectOutputs, maxAbsDiff, modelJson, modelNames, modelPath } from '../helpers/fixtures.js';

const info = runtimeInfo();

describe('runtimeInfo()', () => {
  it('names the LibTorch version', () => {
    expect(info.libtorchVersion).toMatch(/^\d+\.\d+/);
  });

  it('points at the addon file in use', () => {
    expect(path.isAbsolute(info.addonPath)).toBe(true);
    expect(existsSync(info.addonPath) && statSync(info.addonPath).isFile()).toBe(true);
    expect(info.addonPath).toMatch(/torch_node\.node$/);
    if (process.env.TORCH_NODE_ADDON) expect(info.addonPath).toBe(path.resolve(process.env.TORCH_NODE_ADDON));
  });

  it('describes CUDA consistently', () => {
    expect(typeof info.builtWithCuda).toBe('boolean');
    if (info.cudaAvailable) {
      expect(info.builtWithCuda).toBe(true);
      expect(info.cudaDeviceCount).toBeGreaterThan(0);
      expect(info.cudaDeviceName).toEqual(expect.any(String));
    } else {
      expect(info.cudaDeviceCount).toBe(0);
      expect(info.cudaDeviceName).toBeNull();
    }
    expect(Number.isInteger(info.defaultThreads) && info.defaultThreads >= 1).toBe(true);
  });

  it('has no CUDA with a CPU-only LibTorch (as here), and CUDA where the suite is asked to test it', () => {
    if (!info.builtWithCuda) expect(info.cudaAvailable).toBe(false);
    // the GPU check runs the suite with TORCH_NODE_TEST_DEVICE=cuda: it must not pass without a GPU
    if (process.env.TORCH_NODE_TEST_DEVICE?.startsWith('cuda')) expect(info.cudaAvailable).toBe(true);
  });
});

describe('errors from the addon', () => {
  it('are TorchError instances with name, code and LibTorch details', async () => {
    const model = await TorchModel.load(modelPath('raises'), { device: 'cpu' });
    // a mistake of the caller is not a TorchError
    let mistake: unknown;
    try {
      void model.forward([null] as never);
    } catch (e) {
      mistake = e;
    }
    expect(mistake).toBeInstanceOf(TypeError);
    expect(mistake).not.toBeInstanceOf(TorchError);
    const raised = await model.forward([Tensor.float32([-1])]).catch((e: unknown) => e);
    expect(raised).toBeInstanceOf(TorchError);
    expect(raised).toBeInstanceOf(Error);
    expect((raised as TorchError).name).toBe('TorchError');
    expect((raised as TorchError).code).toBe('ERR_FORWARD');
    expect((raised as TorchError).details).toContain('ops.prim.RaiseException');
    expect(String(raised)).toMatch(/^TorchError: .*negative input/);
    await model.dispose();
  });
});

describe.skipIf(!info.cudaAvailable)('CUDA (runs only where runtimeInfo().cudaAvailable)', () => {
  it.each(modelNames())('%s on cuda gives the CPU outputs within 1e-4', async (name) => {
    const cpu = await TorchModel.load(modelPath(name), { device: 'cpu' });
    const cuda = await TorchModel.load(modelPath(name), { device: 'cuda' });
    expect(cuda.device).toBe('cuda:0');
    expect(cuda.info.optimized).toBe(false); // optimisation defaults to off on CUDA
    for (const { name: example } of modelJson(name).examples) {
      const inputs = exampleInputs(name, example);
      const [a, b] = [await cpu.forward(inputs), await cuda.forward(inputs)];
      expect(b.map((t) => [t.dtype, t.shape, t.name])).toEqual(a.map((t) => [t.dtype, t.shape, t.name]));
      a.forEach((t, i) => {
        expect(maxAbsDiff(t, b[i]), `output ${i}`).toBeLessThanOrEqual(1e-4 * (1 + maxAbs(t)));
      });
      expectOutputs(b, exampleJson(name, example).output, 1e-4, `${name} on cuda`);
    }
    await Promise.all([cpu.dispose(), cuda.dispose()]);
  });

  it('convnet on cuda, batch 1 and 8, optimized too, within 1e-4 of eager', async () => {
    for (const optimize of [false, true]) {
      const m = await TorchModel.load(modelPath('convnet'), { device: 'cuda', optimize });
      for (const example of ['batch1', 'batch8']) {
        expectOutputs(await m.forward(exampleInputs('convnet', example)), exampleJson('convnet', example).output, 1e-4);
      }
      await m.dispose();
    }
  });

  it('a device index that does not exist: ERR_INVALID_DEVICE', async () => {
    const err = await TorchModel.load(modelPath('add_mul'), { device: 'cuda:999' }).catch((e: unknown) => e);
    expect((err as TorchError).code).toBe('ERR_INVALID_DEVICE');
    expect((err as TorchError).message).toMatch(/does not exist: this machine has \d+ CUDA device/);
  });
});

describe.skipIf(info.cudaAvailable)('without CUDA (runs only where runtimeInfo().cudaAvailable is false)', () => {
  it.each(['cuda', 'cuda:0', 'cuda:3'] as const)("device '%s' rejects with ERR_CUDA_UNAVAILABLE", async (device) => {
    const err = await TorchModel.load(modelPath('add_mul'), { device }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    expect((err as TorchError).code).toBe('ERR_CUDA_UNAVAILABLE');
    expect((err as TorchError).message).toContain(`Device '${device}' was requested but`);
    expect((err as TorchError).message).toMatch(info.builtWithCuda ? /CUDA is not available/ : /CPU-only LibTorch/);
  });

  it("device 'auto' falls back to the CPU", async () => {
    const m = await TorchModel.load(modelPath('add_mul'), { device: 'auto' });
    expect(m.device).toBe('cpu');
    expect(m.info.optimized).toBe(true);
    await m.dispose();
  });
});

function maxAbs(t: { data: ArrayLike<number | bigint> }): number {
  let max = 0;
  for (let i = 0; i < t.data.length; i++) max = Math.max(max, Math.abs(Number(t.data[i])));
  return max;
}
