// Ending a JavaScript environment that used the addon: a Node process must exit cleanly (status 0) once its
// work is done, and a worker thread may end, even with a forward in flight, without harming the process.
//
// Before the addon's CompletionChannel (native/addon.cc), about half of such processes aborted at exit
// (SIGABRT in uv_mutex_lock, from napi_release_threadsafe_function on the inference thread after Node had
// freed the thread-safe function), and more of them when process.exit() ran with forwards in flight
// (SIGABRT, SIGSEGV, SIGBUS). The race depends on timing: the process tests run the built library (dist/,
// `npm run build:ts`) in a plain Node process, as users run it, several times (TORCH_NODE_TEST_EXIT_RUNS,
// default 6; through tsx the timing hid the race).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { Tensor, TorchModel, runtimeInfo } from '../../src/index.js';
import { modelPath } from '../helpers/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = path.join(root, 'dist', 'index.js');
const RUNS = Number(process.env.TORCH_NODE_TEST_EXIT_RUNS || 6);

function runNode(script: string, env: Record<string, string> = {}, timeoutMs = 120_000) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: timeoutMs,
  });
}

const IMPORT = `import { Tensor, TorchModel } from ${JSON.stringify(pathToFileURL(dist).href)};`;

describe.skipIf(!existsSync(dist))('process exit (runs dist/: skipped until `npm run build:ts` made it)', () => {
  it(`a process that used a model exits with status 0 when its work is done, ${RUNS} times out of ${RUNS}`, () => {
    const results = Array.from({ length: RUNS }, (_, i) =>
      runNode(`
        ${IMPORT}
        const model = await TorchModel.load(${JSON.stringify(modelPath('add_mul'))}, { device: 'cpu' });
        const [sum] = await model.forward([Tensor.float32([1, 2]), Tensor.float32([3, ${i}])]);
        ${i % 2 ? 'await model.dispose();' : '// ends without dispose()'}
        process.exitCode = sum.data[1] === ${2 + i} ? 0 : 3; // the last thing the process does
      `),
    );
    expect(results.map((r) => r.status ?? `${r.signal} ${r.stderr}`)).toEqual(new Array(RUNS).fill(0));
  });

  it(`process.exit() while forwards are in flight exits with status 0, ${RUNS} times out of ${RUNS}`, () => {
    const results = Array.from({ length: RUNS }, (_, i) =>
      runNode(`
        ${IMPORT}
        const model = await TorchModel.load(${JSON.stringify(modelPath('slow'))}, { device: 'cpu', threads: 1 });
        let seed = 1;
        const next = () => ((seed = (seed * 16807) % 2147483647), seed / 2147483647 - 0.5);
        const x = Tensor.float32(Float32Array.from({ length: 128 * 128 }, () => (next() * 3.5) / Math.sqrt(128)), [128, 128]);
        for (let k = 0; k < 3; k++) model.forward([x, Tensor.int64([200])]).catch(() => {});
        setTimeout(() => process.exit(0), ${[1, 20][i % 2]});
      `),
    );
    expect(results.map((r) => r.status ?? `${r.signal} ${r.stderr}`)).toEqual(new Array(RUNS).fill(0));
  });

  it(`process.exit() while a load waits for its optimisation step (queued on the inference thread) exits with status 0, ${RUNS} times out of ${RUNS}`, () => {
    // Before, the load's libuv thread waited for ever for a job that the exit had dropped, and so did the exit.
    const head = path.join(root, 'models', 'head.pth');
    const results = Array.from({ length: RUNS }, (_, i) =>
      runNode(
        `
        ${IMPORT}
        const slow = await TorchModel.load(${JSON.stringify(modelPath('slow'))}, { device: 'cpu', threads: 1 });
        const x = Tensor.float32(new Float32Array(128 * 128).fill(0.001), [128, 128]);
        slow.forward([x, Tensor.int64([300])]).catch(() => {});
        TorchModel.load(${JSON.stringify(head)}, { device: 'cpu', optimize: true }).catch(() => {});
        setTimeout(() => process.exit(0), ${[5, 40, 150][i % 3]});
      `,
        {},
        60_000,
      ),
    );
    expect(results.map((r) => r.status ?? `${r.signal} ${r.stderr}`)).toEqual(new Array(RUNS).fill(0));
  });

  it('process.exit() during a forward that would run for hours leaves after TORCH_NODE_EXIT_WAIT_MS, with its exit code', () => {
    // Before the bound, the process waited for the forward (here: killed by spawnSync's timeout instead).
    const r = runNode(
      `
        ${IMPORT}
        const model = await TorchModel.load(${JSON.stringify(modelPath('slow'))}, { device: 'cpu', threads: 1 });
        const x = Tensor.float32(new Float32Array(256 * 256).fill(0.001), [256, 256]);
        model.forward([x, Tensor.int64([1_000_000_000])]).catch(() => {});
        setTimeout(() => process.exit(7), 200);
      `,
      { TORCH_NODE_EXIT_WAIT_MS: '300' },
      60_000,
    );
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status).toBe(7);
    expect(r.stderr).toContain('a forward was still running 300 ms after process.exit(); leaving without waiting for it');
  });

  it('TORCH_NODE_EXIT_WAIT_MS that is not a number of milliseconds is refused at the first use of the addon (a load)', () => {
    const r = runNode(`${IMPORT}\nawait TorchModel.load(${JSON.stringify(modelPath('add_mul'))});`, { TORCH_NODE_EXIT_WAIT_MS: 'soon' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("Expected an integer number of milliseconds (0 to 86400000) for TORCH_NODE_EXIT_WAIT_MS but received 'soon'");
  });
});

// The worker uses the addon directly (plain JavaScript: a worker cannot import the TypeScript sources).
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const native = require(workerData.addon);
native.setErrorClass(class TorchError extends Error {});
(async () => {
  const model = await native.load(workerData.model, { device: 'cpu', threads: 1 });
  let seed = 1;
  const x = Float32Array.from({ length: 128 * 128 }, () => {
    seed = (seed * 16807) % 2147483647;
    return ((seed / 2147483647 - 0.5) * 3.5) / Math.sqrt(128);
  });
  const forward = model.forward([
    { dtype: 'float32', shape: [128, 128], data: x },
    { dtype: 'int64', shape: [1], data: BigInt64Array.of(BigInt(workerData.iterations)) },
  ]);
  parentPort.postMessage('started');
  const result = await forward;
  parentPort.postMessage('finished ' + result.tensors[0].shape.join('x'));
})();
`;

function startWorker(iterations: number): { worker: Worker; messages: string[]; started: Promise<void>; exited: Promise<number> } {
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { addon: runtimeInfo().addonPath, model: modelPath('slow'), iterations },
  });
  const messages: string[] = [];
  const started = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: string) => {
      messages.push(m);
      if (m === 'started') resolve();
    });
    worker.on('error', reject);
  });
  const exited = new Promise<number>((resolve) => worker.on('exit', resolve));
  return { worker, messages, started, exited };
}

describe('worker threads', () => {
  it('a worker that uses the addon finishes its forward and ends; the process goes on', async () => {
    const { messages, started, exited } = startWorker(5);
    await started;
    expect(await exited).toBe(0);
    expect(messages).toEqual(['started', 'finished 128x128']);
    await expectMainThreadWorks();
  });

  it('workers terminated with a forward in flight leave the process and the inference thread working', async () => {
    for (let i = 0; i < 3; i++) {
      const { worker, messages, started, exited } = startWorker(300);
      await started;
      await worker.terminate();
      expect(await exited).toBe(1); // terminated, not finished
      expect(messages).toEqual(['started']);
    }
    // the main thread's forwards queue behind the abandoned ones and complete
    await expectMainThreadWorks();
  });
});

async function expectMainThreadWorks(): Promise<void> {
  const model = await TorchModel.load(modelPath('add_mul'), { device: 'cpu', threads: 1 });
  const [sum] = await model.forward([Tensor.float32([1, 2]), Tensor.float32([3, 4])]);
  expect(sum.toArray()).toEqual([4, 6]);
  await model.dispose();
}
