// A load whose inference thread cannot be started (a limit on threads: ulimit -u, a container's pids limit)
// rejects with ERR_MODEL_LOAD, and the process goes on. Before, the thread was started outside the load's
// try (native/async_workers.cc): std::system_error reached node-addon-api's AsyncWorker, whose OnError the
// worker did not override, and the load's promise was never settled.
//
// RLIMIT_NPROC counts a user's threads, and binds no root process: so the child runs as an unprivileged user
// (`runuser -u nobody` when the test runs as root, as in CI; the user running it otherwise). Once it has loaded
// a model on the shared thread (the pool, LibTorch and tsx's threads started), the child lowers its own limit
// with prlimit to a few threads above what its user runs now, then loads models on threads of their own until
// a load fails.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { addonCandidates } from '../../src/torch/binding.js';
import { modelPath } from '../helpers/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const which = (tool: string): string | undefined => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].map((dir) => path.join(dir, tool)).find((p) => existsSync(p));
const prlimit = which('prlimit');
const runuser = which('runuser');
const isRoot = process.getuid?.() === 0;
// Run as root, the child drops to nobody, who must be able to read the addon and the LibTorch it links: Debian's
// (/usr/lib) can be read; a pip torch under root's own home (test:libtorch2's ~/.cache, mode 0700) cannot.
let unprivilegedLoadError = '';
function addonLoadsAsNobody(): boolean {
  const addon = addonCandidates().find((p) => existsSync(p));
  if (!addon) return true; // the load itself reports ERR_ADDON_NOT_BUILT, as a failure
  const probe = spawnSync(runuser as string, ['-u', 'nobody', '--', process.execPath, '-e', `require(${JSON.stringify(addon)})`], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  // Only a library nobody may not read skips the test; any other failure lets it run, and fail.
  const unreadable = /[^\s:]*: cannot open shared object file[^\n]*|[^\n]*Permission denied[^\n]*/.exec(probe.stderr ?? '');
  unprivilegedLoadError = unreadable?.[0].slice(0, 200) ?? '';
  return probe.status === 0 || !unreadable;
}

const missing =
  process.platform !== 'linux'
    ? 'not Linux'
    : !prlimit
      ? 'prlimit (util-linux) is not installed'
      : isRoot && !runuser
        ? 'running as root without runuser (util-linux) to drop to an unprivileged user'
        : isRoot && !addonLoadsAsNobody()
          ? `the addon's LibTorch cannot be loaded by the unprivileged user nobody (${unprivilegedLoadError})`
          : '';

const dir = mkdtempSync(path.join(tmpdir(), 'thread-limit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SETTLE_MS = 20_000; // a load settles in well under a second here; one that has not by then never will

const script = path.join(dir, 'limit.mts');
writeFileSync(
  script,
  `import { execFileSync } from 'node:child_process';
  import { readdirSync, readFileSync } from 'node:fs';
  import { Tensor, TorchError, TorchModel } from ${JSON.stringify(pathToFileURL(path.join(root, 'src', 'index.ts')).href)};
  const file = process.argv[2];
  const report = (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  };
  const settled = (promise, what) =>
    Promise.race([
      promise.then((model) => ({ model }), (error) => ({ error })),
      new Promise((resolve) => setTimeout(() => resolve({ pending: what }), ${SETTLE_MS})), // not unref(): a never-settled load would let the process end with status 13
    ]);
  // The threads (tasks) of this process's user, in every process: what RLIMIT_NPROC counts.
  const userTasks = () => {
    let n = 0;
    for (const pid of readdirSync('/proc')) {
      if (!/^\\d+$/.test(pid)) continue;
      try {
        const status = readFileSync('/proc/' + pid + '/status', 'utf8');
        if (Number(/^Uid:\\s+(\\d+)/m.exec(status)[1]) === process.getuid()) n += Number(/^Threads:\\s+(\\d+)/m.exec(status)[1]);
      } catch {} // gone meanwhile
    }
    return n;
  };
  const shared = await TorchModel.load(file, { threads: 1, inferenceThread: 'shared' });
  const limit = userTasks() + 4;
  execFileSync(${JSON.stringify(prlimit ?? 'prlimit')}, ['--pid', String(process.pid), '--nproc=' + limit]);
  const own = [];
  let failure;
  for (let i = 0; i < 64 && !failure; i++) {
    const r = await settled(TorchModel.load(file, { threads: 1, inferenceThread: 'own' }), 'own load ' + i);
    if (r.pending) report({ pending: r.pending, loaded: own.length, limit });
    if (r.error) failure = r.error;
    else own.push(r.model);
  }
  if (!failure) report({ noFailure: true, loaded: own.length, limit });
  // The process goes on: a model on the shared thread (started before the limit) loads and runs.
  const again = await settled(TorchModel.load(file, { threads: 1, inferenceThread: 'shared' }), 'shared load');
  if (!again.model) report({ pending: again.pending, sharedError: String(again.error) });
  const [sum] = await again.model.forward([Tensor.float32([1, 2]), Tensor.float32([3, 4])]);
  // Threads given back, a model on a thread of its own loads again.
  await Promise.all(own.map((m) => m.dispose()));
  let reloaded;
  for (let i = 0; i < 50 && !reloaded?.model; i++) {
    reloaded = await settled(TorchModel.load(file, { threads: 1, inferenceThread: 'own' }), 'own load after dispose');
    if (reloaded.pending) report({ pending: reloaded.pending });
    if (!reloaded.model) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  report({
    limit,
    loaded: own.length,
    error: { isTorchError: failure instanceof TorchError, code: failure.code, message: failure.message },
    sharedSum: Array.from(sum.data),
    reloaded: reloaded.model?.info.inferenceThread ?? String(reloaded.error),
  });
  `,
);
// The unprivileged user reads the script (the repository and node are world-readable).
chmodSync(dir, 0o755);
chmodSync(script, 0o644);

describe.skipIf(missing !== '')(`a limit on threads${missing ? ` (skipped: ${missing})` : ''}`, () => {
  it('a load whose own inference thread cannot start rejects with ERR_MODEL_LOAD; the process loads on', () => {
    const command = [process.execPath, '--import', 'tsx', script, modelPath('add_mul')];
    // The BLAS kernel's check (src/torch/blas-kernel.ts) has nothing to do with this, and nobody has no cache for it.
    const options = { cwd: root, encoding: 'utf8', timeout: 90_000, env: { ...process.env, TORCH_NODE_BLAS_CHECK: '0' } } as const;
    const r = isRoot ? spawnSync(runuser as string, ['-u', 'nobody', '--', ...command], options) : spawnSync(command[0], command.slice(1), options);
    expect(r.status, `${r.signal ?? ''} ${r.stderr}`).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    expect(result.pending, 'a load never settled').toBeUndefined();
    expect(result.noFailure, `every load got a thread under the limit ${result.limit}`).toBeUndefined();
    expect(result.error).toMatchObject({ isTorchError: true, code: 'ERR_MODEL_LOAD' });
    expect(result.error.message).toMatch(/^Cannot start an inference thread for the model: .+/);
    expect(result.sharedSum).toEqual([4, 6]);
    expect(result.reloaded).toBe('own');
  }, 120_000);
});
