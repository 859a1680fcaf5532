// The OpenBLAS kernel LibTorch's matrix products run on, chosen by measurement before the addon loads.
//
// Debian's LibTorch multiplies matrices with the system's OpenBLAS, which picks a kernel for the CPU when it
// loads, or takes the one OPENBLAS_CORETYPE names. Its guess is not always good: on one Xeon, OpenBLAS 0.3.21
// named the CPU Cooperlake yet ran its generic kernel, and the workshop's model took 700 ms instead of 165 ms
// with OPENBLAS_CORETYPE=SkylakeX; and older OpenBLAS kernels have computed wrong results on some CPUs. No user
// should have to know this. So, once per machine and addon build, each kernel this CPU can run is tried in a
// child process (the kernel is fixed when OpenBLAS loads): its matrix products are checked against a double-
// precision reference (native/blas.cc) and timed, and the fastest correct one is kept in a small JSON file
// beside the addon. Loading the addon then sets OPENBLAS_CORETYPE to it.
//
// OPENBLAS_CORETYPE set by the user always wins (and is only reported). TORCH_NODE_BLAS_CHECK=0 turns the
// choice off (OpenBLAS picks, as without this library). A LibTorch without OpenBLAS (PyPI's torch: MKL) has
// nothing to choose.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';

/** Where the kernel in use comes from. */
export type BlasKernelSource =
  | 'environment' // OPENBLAS_CORETYPE was set before the library loaded
  | 'measured' // chosen by this module's check (now or earlier, from its cache); may be OpenBLAS's own pick
  | 'library default' // OpenBLAS's own pick, unchecked: the check is off or could not run
  | 'not OpenBLAS'; // LibTorch's BLAS is another (MKL)

export interface KernelTrial {
  /** `default` (OpenBLAS's own pick) or an OPENBLAS_CORETYPE name. */
  kernel: string;
  /** The kernel OpenBLAS reported running. */
  ran: string | null;
  correct: boolean;
  gflops: number;
  maxRelativeErrorFloat32: number;
  maxRelativeErrorFloat64: number;
  worstCase: string;
  error?: string;
}

export interface BlasChoice {
  source: BlasKernelSource;
  /** The OPENBLAS_CORETYPE this module set, or undefined when it set none. */
  coretype: string | undefined;
  /** The trials the choice was made from (none when the check did not run). */
  trials: KernelTrial[];
  /** The file that keeps the choice. */
  cacheFile: string | undefined;
  /** Why the check did not run or chose nothing, for logs. */
  note?: string;
}

/** A kernel counts as correct when every product's error is within this much of its magnitude. */
const MAX_ERROR_FLOAT32 = 1e-5;
const MAX_ERROR_FLOAT64 = 1e-12;
/** Another kernel replaces OpenBLAS's own pick only when it is this much faster (timings are noisy). */
const MIN_GAIN = 1.1;
/** Bumped when the check changes, so that older choices are made again. */
const CHECK_VERSION = 1;

// Runs in the child: loads the addon (OPENBLAS_CORETYPE already in its environment), prints one JSON line.
const PROBE = `
const addon = require(process.argv[1]);
const blas = addon.runtimeInfo().blas;
addon.checkBlas(Number(process.argv[2])).then(
  (check) => console.log(JSON.stringify({ blas, check })),
  (err) => console.log(JSON.stringify({ blas, error: String(err && err.message || err) })),
);`;

function cpuSignature(): string {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return `${process.arch}-unknown`;
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
  return [field('vendor_id'), field('cpu family'), field('model'), field('model name'), field('flags')].join('|');
}

/** The OPENBLAS_CORETYPE values worth trying on this CPU, OpenBLAS's own pick first. */
export function candidateKernels(flags: string): string[] {
  const has = (...names: string[]) => names.every((n) => new RegExp(`\\b${n}\\b`).test(flags));
  const kernels = ['default'];
  if (has('avx512f', 'avx512dq', 'avx512bw', 'avx512vl')) kernels.push('SkylakeX');
  if (has('avx2', 'fma')) kernels.push('Haswell');
  if (has('avx')) kernels.push('Sandybridge');
  return kernels;
}

function trial(addonPath: string, kernel: string, threads: number): KernelTrial & { library: string | null } {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads) };
  if (kernel === 'default') delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = kernel;
  const child = spawnSync(process.execPath, ['-e', PROBE, addonPath, String(threads)], { env, encoding: 'utf8', timeout: 60_000 });
  const failed = (error: string) => ({
    kernel,
    ran: null,
    library: null,
    correct: false,
    gflops: 0,
    maxRelativeErrorFloat32: Infinity,
    maxRelativeErrorFloat64: Infinity,
    worstCase: '',
    error,
  });
  const line = child.stdout?.trim().split('\n').at(-1);
  if (child.status !== 0 || !line)
    return failed(`the check exited with ${child.status ?? child.signal}: ${(child.stderr ?? '').trim().split('\n').at(-1) ?? ''}`);
  let parsed: { blas: { library: string | null; kernel: string | null }; check?: Omit<KernelTrial, 'kernel' | 'ran' | 'correct'>; error?: string };
  try {
    parsed = JSON.parse(line);
  } catch {
    return failed(`the check printed ${line.slice(0, 200)}`);
  }
  if (!parsed.check) return { ...failed(parsed.error ?? 'no result'), library: parsed.blas.library, ran: parsed.blas.kernel };
  const { check } = parsed;
  return {
    kernel,
    ran: parsed.blas.kernel,
    library: parsed.blas.library,
    correct: check.maxRelativeErrorFloat32 <= MAX_ERROR_FLOAT32 && check.maxRelativeErrorFloat64 <= MAX_ERROR_FLOAT64,
    gflops: check.gflops,
    maxRelativeErrorFloat32: check.maxRelativeErrorFloat32,
    maxRelativeErrorFloat64: check.maxRelativeErrorFloat64,
    worstCase: check.worstCase,
  };
}

/** The fastest correct kernel; OpenBLAS's own pick unless another is MIN_GAIN faster or it is wrong. */
export function pick(trials: readonly KernelTrial[]): KernelTrial | undefined {
  const correct = trials.filter((t) => t.correct);
  if (correct.length === 0) return undefined;
  const fastest = correct.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  const own = correct.find((t) => t.kernel === 'default');
  return own && own.gflops * MIN_GAIN >= fastest.gflops ? own : fastest;
}

interface CacheEntry {
  version: number;
  key: string;
  choice: string | null;
  library: string | null;
  trials: KernelTrial[];
  measuredAt: string;
}

function cacheFileFor(addonPath: string, key: string): string[] {
  const name = 'blas-kernel.json';
  return [
    path.join(path.dirname(addonPath), name),
    path.join(tmpdir(), `torchscript-node-${createHash('sha256').update(key).digest('hex').slice(0, 16)}-${name}`),
  ];
}

function readCache(files: string[], key: string): { entry: CacheEntry; file: string } | undefined {
  for (const file of files) {
    try {
      const entry = JSON.parse(readFileSync(file, 'utf8')) as CacheEntry;
      if (entry.version === CHECK_VERSION && entry.key === key) return { entry, file };
    } catch {
      // absent or unreadable: measure
    }
  }
  return undefined;
}

function writeCache(files: string[], entry: CacheEntry): string | undefined {
  for (const file of files) {
    try {
      const temporary = `${file}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify(entry, null, 2)}\n`);
      renameSync(temporary, file);
      return file;
    } catch {
      // not writable (a read-only install): the next place
    }
  }
  return undefined;
}

/**
 * Chooses the kernel for the addon at `addonPath` and sets OPENBLAS_CORETYPE for this process accordingly.
 * Call it before the addon is loaded. Synchronous: the first call on a machine runs the trials (a few seconds,
 * in child processes); later ones read the cached choice.
 */
export function chooseBlasKernel(addonPath: string): BlasChoice {
  if (process.env.OPENBLAS_CORETYPE) return { source: 'environment', coretype: undefined, trials: [], cacheFile: undefined };
  if (process.env.TORCH_NODE_BLAS_CHECK === '0') {
    return { source: 'library default', coretype: undefined, trials: [], cacheFile: undefined, note: 'TORCH_NODE_BLAS_CHECK=0' };
  }
  const cpu = cpuSignature();
  let addonStamp = '';
  try {
    const st = statSync(addonPath);
    addonStamp = `${addonPath}|${st.size}|${st.mtimeMs}`;
  } catch {
    return { source: 'library default', coretype: undefined, trials: [], cacheFile: undefined, note: `no addon at ${addonPath}` };
  }
  const key = createHash('sha256')
    .update(`${cpu}\n${addonStamp}\n${process.env.OPENBLAS_L2_SIZE ?? ''}`)
    .digest('hex');
  const files = cacheFileFor(addonPath, key);
  const cached = readCache(files, key);
  let entry: CacheEntry;
  let cacheFile: string | undefined;
  if (cached) {
    ({ entry, file: cacheFile } = cached);
  } else {
    const threads = availableParallelism();
    const flags = /^flags\s*:\s*(.*)$/m.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? '';
    const trials: (KernelTrial & { library: string | null })[] = [];
    for (const kernel of candidateKernels(flags)) {
      const result = trial(addonPath, kernel, threads);
      trials.push(result);
      // Not OpenBLAS (or the addon does not load): nothing to choose between.
      if (kernel === 'default' && result.library !== 'OpenBLAS') break;
    }
    const best = pick(trials);
    entry = {
      version: CHECK_VERSION,
      key,
      library: trials[0]?.library ?? null,
      choice: best && best.kernel !== 'default' ? best.kernel : null,
      trials: trials.map(({ library: _library, ...t }) => t),
      measuredAt: new Date().toISOString(),
    };
    cacheFile = writeCache(files, entry);
  }
  if (entry.library !== 'OpenBLAS') {
    return { source: 'not OpenBLAS', coretype: undefined, trials: entry.trials, cacheFile, note: entry.trials[0]?.error };
  }
  if (entry.choice) process.env.OPENBLAS_CORETYPE = entry.choice;
  const anyCorrect = entry.trials.some((t) => t.correct);
  return {
    // 'measured' also when OpenBLAS's own pick was the best: it was checked.
    source: anyCorrect ? 'measured' : 'library default',
    coretype: entry.choice ?? undefined,
    trials: entry.trials,
    cacheFile,
    ...(anyCorrect ? {} : { note: 'no kernel passed the check: OpenBLAS picks (see trials)' }),
  };
}
