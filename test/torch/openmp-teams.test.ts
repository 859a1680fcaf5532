// LibTorch's parallel kernels run in OpenMP teams, one per thread that calls them, and libgomp stops spinning
// between parallel regions in every team once it manages more threads than the machine has cores: a small
// model's forward at 2 threads then took 3x as long. So every LibTorch operator the addon runs (forwards,
// and a load's optimisation step) runs on its one inference thread: loading a model never starts a team.
import { readdirSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { Tensor, TorchModel } from '../../src/index.js';
import { DEFAULT_MODEL_DIR } from '../helpers/server.js';

const threadCount = (): number => readdirSync('/proc/self/task').length;

describe.runIf(process.platform === 'linux')('OpenMP teams', () => {
  it("loading a model (optimised: freezing runs operators) starts no thread once the inference thread's team exists", async () => {
    // The text encoder's forward (matrix products at 2 threads) starts the inference thread and its team.
    const encoder = await TorchModel.load(path.join(DEFAULT_MODEL_DIR, 'text_encoder.pth'), { threads: 2 });
    const ids = Tensor.int64(new BigInt64Array(2 * 128).fill(1n), [2, 128]);
    await encoder.forward([ids, Tensor.int64(new BigInt64Array(2 * 128).fill(1n), [2, 128])]);
    const before = threadCount();
    // The head's convolutions and batch norms are folded by optimize_for_inference (parallel kernels).
    const head = await TorchModel.load(path.join(DEFAULT_MODEL_DIR, 'head.pth'), { threads: 2, optimize: true });
    expect(head.info.optimized).toBe(true);
    expect(threadCount(), 'threads started by the load').toBe(before);
    await Promise.all([encoder.dispose(), head.dispose()]);
  });
});
