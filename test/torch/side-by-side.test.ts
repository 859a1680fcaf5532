// Models side by side: a model whose threads are fewer than the cores gets an inference thread of its own
// (load option inferenceThread), so that two such models run at once; that thread ends with the model.
// Everything here waits for events (a forward's settling, a thread's end), never for a duration.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { describe, expect, it } from 'vitest';

import { Tensor, TorchModel } from '../../src/index.js';
import { binding } from '../../src/torch/binding.js';
import { modelPath } from '../helpers/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const liveThreads = (): number => binding().binding.testing.inferenceThreads();
const taskCount = (): number => readdirSync('/proc/self/task').length;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Waits until `done()` holds, collecting garbage between looks; the test's own timeout bounds it. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// The `slow` fixture multiplies x by itself n times: with values of order 1 (no denormals), n = 3000 products of
// 128×128 matrices take a second or more; the short forward beside it takes microseconds.
let seed = 1;
const next = (): number => {
  seed = (seed * 16807) % 2147483647;
  return seed / 2147483647 - 0.5;
};
const x = Tensor.float32(
  Float32Array.from({ length: 128 * 128 }, () => (next() * 3.5) / Math.sqrt(128)),
  [128, 128],
);
const longForward = (model: TorchModel): Promise<Tensor[]> => model.forward([x, Tensor.int64([3000])]);
const shortInput = [Tensor.float32([1, 2])];

async function forwardsOfUnreferencedModels(count: number): Promise<Promise<Tensor[]>[]> {
  const models = await Promise.all(Array.from({ length: count }, () => TorchModel.load(modelPath('slow'), { threads: 1, inferenceThread: 'own' })));
  return models.map((m) => m.forward([x, Tensor.int64([20])]));
}

describe('inference threads', () => {
  it("inferenceThread 'auto' gives a model its own thread when its threads are fewer than the cores", async () => {
    const cores = availableParallelism();
    const one = await TorchModel.load(modelPath('identity'), { threads: 1 });
    const all = await TorchModel.load(modelPath('identity'), { threads: cores });
    const own = await TorchModel.load(modelPath('identity'), { threads: cores, inferenceThread: 'own' });
    const shared = await TorchModel.load(modelPath('identity'), { threads: 1, inferenceThread: 'shared' });
    expect(one.info.inferenceThread).toBe(cores > 1 ? 'own' : 'shared');
    expect(all.info.inferenceThread).toBe('shared');
    expect(own.info.inferenceThread).toBe('own');
    expect(shared.info.inferenceThread).toBe('shared');
    for (const m of [one, all, own, shared]) expect((await m.forward(shortInput))[0].data).toEqual(Float32Array.from([1, 2]));
    await Promise.all([one, all, own, shared].map((m) => m.dispose()));
  });

  it('inferenceThread is checked like the other options', () => {
    expect(() => TorchModel.load(modelPath('identity'), { inferenceThread: 'mine' as 'own' })).toThrow(
      new RangeError("Expected 'auto', 'own' or 'shared' for inferenceThread but received 'mine' of type string"),
    );
    expect(() => TorchModel.load(modelPath('identity'), { inferenceThread: 1 as unknown as 'own' })).toThrow(TypeError);
  });

  it('two models on threads of their own run at once: a short forward completes while a long one of the other model runs', async () => {
    const long = await TorchModel.load(modelPath('slow'), { threads: 1, inferenceThread: 'own' });
    const short = await TorchModel.load(modelPath('identity'), { threads: 1, inferenceThread: 'own' });
    const events: string[] = [];
    const running = longForward(long).then(() => events.push('long'));
    await short.forward(shortInput).then(() => events.push('short'));
    await running;
    expect(events).toEqual(['short', 'long']);
    await Promise.all([long.dispose(), short.dispose()]);
  });

  it('two models on the shared thread take turns: the short forward waits for the long one asked before it', async () => {
    const long = await TorchModel.load(modelPath('slow'), { threads: 1, inferenceThread: 'shared' });
    const short = await TorchModel.load(modelPath('identity'), { threads: 1, inferenceThread: 'shared' });
    const events: string[] = [];
    const running = longForward(long).then(() => events.push('long'));
    await short.forward(shortInput).then(() => events.push('short'));
    await running;
    expect(events).toEqual(['long', 'short']);
    await Promise.all([long.dispose(), short.dispose()]);
  });

  it("a model's own thread keeps the model's order: dispose() runs after its queued forwards, which all complete", async () => {
    const m = await TorchModel.load(modelPath('slow'), { threads: 1, inferenceThread: 'own' });
    const events: string[] = [];
    const forwards = [0, 1, 2].map((i) => m.forward([x, Tensor.int64([50])]).then(() => events.push(`forward ${i}`)));
    await m.dispose().then(() => events.push('dispose'));
    await Promise.all(forwards);
    expect(events).toEqual(['forward 0', 'forward 1', 'forward 2', 'dispose']);
    await expect(m.forward([x, Tensor.int64([1])])).rejects.toMatchObject({ code: 'ERR_MODEL_DISPOSED' });
  });

  it.runIf(process.platform === 'linux')('own threads end after dispose: 30 load/forward/dispose cycles leave no thread behind', async () => {
    // One cycle first: libuv's pool and the shared thread start on first use and stay.
    const warm = await TorchModel.load(modelPath('identity'), { threads: 1, inferenceThread: 'own', optimize: true });
    await warm.forward(shortInput);
    await warm.dispose();
    await until(() => liveThreads() <= 1);
    const threads = liveThreads();
    const tasks = taskCount();
    for (let i = 0; i < 30; i++) {
      const m = await TorchModel.load(modelPath('convnet'), { threads: 1, inferenceThread: 'own', optimize: i % 2 === 0 });
      await m.forward([Tensor.float32(new Float32Array(2 * 3 * 8 * 8).fill(0.5), [2, 3, 8, 8])]);
      await m.dispose();
    }
    await until(() => liveThreads() === threads && taskCount() <= tasks);
    expect(liveThreads()).toBe(threads);
    expect(taskCount()).toBeLessThanOrEqual(tasks);
  });

  it('a collected model (never disposed) is freed on its own thread after its forwards, and the thread ends', async () => {
    await until(() => liveThreads() <= 1);
    const threads = liveThreads();
    // Loaded in a function of their own: a suspended async frame may keep its locals (the last model) alive.
    const outputs = await forwardsOfUnreferencedModels(3);
    expect(liveThreads()).toBe(threads + 3);
    // Nothing refers to the models any more; their forwards still complete.
    for (const out of await Promise.all(outputs)) expect(out[0].shape).toEqual([128, 128]);
    await until(() => liveThreads() === threads);
    expect(liveThreads()).toBe(threads);
  });

  it('process.exit() while forwards run on several inference threads exits with status 0, 4 times out of 4', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'side-by-side-'));
    try {
      const script = path.join(dir, 'exit.mts');
      writeFileSync(
        script,
        `import { Tensor, TorchModel } from ${JSON.stringify(pathToFileURL(path.join(root, 'src', 'index.ts')).href)};
        const models = await Promise.all([
          TorchModel.load(${JSON.stringify(modelPath('slow'))}, { threads: 1, inferenceThread: 'own' }),
          TorchModel.load(${JSON.stringify(modelPath('slow'))}, { threads: 1, inferenceThread: 'own' }),
          TorchModel.load(${JSON.stringify(modelPath('slow'))}, { threads: 1, inferenceThread: 'shared' }),
        ]);
        const x = Tensor.float32(new Float32Array(128 * 128).fill(0.01), [128, 128]);
        for (const m of models) for (let k = 0; k < 2; k++) m.forward([x, Tensor.int64([200])]).catch(() => {});
        await models[0].dispose().catch(() => {});
        setTimeout(() => process.exit(0), Number(process.argv[2]));
        `,
      );
      const results = [1, 10, 30, 0].map((delay) =>
        spawnSync(process.execPath, ['--import', 'tsx', script, String(delay)], { cwd: root, encoding: 'utf8', timeout: 120_000 }),
      );
      expect(results.map((r) => r.status ?? `${r.signal} ${r.stderr}`)).toEqual([0, 0, 0, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
