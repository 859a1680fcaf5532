// The OpenBLAS kernel LibTorch's matrix products run on, chosen by measurement before the addon loads.
//
// Debian's LibTorch multiplies matrices with the system's OpenBLAS, which picks a kernel for the CPU when it
// loads, or takes the one OPENBLAS_CORETYPE names. Its guess is not always good: on one Xeon, OpenBLAS 0.3.21
// named the CPU Cooperlake yet ran its generic kernel, and the workshop's model took 700 ms instead of 165 ms
// with OPENBLAS_CORETYPE=SkylakeX; and older OpenBLAS kernels have computed wrong results on some CPUs. No user
// should have to know this. So, once per machine and addon build, each kernel this CPU can run is tried in a
// child process (the kernel is fixed when OpenBLAS loads): its matrix products are checked against a double-
// precision reference (native/blas.cc) and timed, and the fastest correct one is kept in a small JSON file.
// Loading the addon then sets OPENBLAS_CORETYPE to it.
//
// What the choice depends on, and so what it is kept under: the CPU (vendor, family, model, name, flags), the
// thread count the check runs with, the check itself (CHECK_VERSION), OPENBLAS_L2_SIZE, LD_LIBRARY_PATH and
// LD_PRELOAD, and the shared libraries a matrix product runs through (LibTorch, its BLAS, OpenMP runtime and
// oneDNN) as the dynamic loader resolves them for the addon (`ldd`): each one's resolved path (through symlinks:
// Debian's alternatives pick libblas.so.3 that way), size and mtime. So OpenBLAS, LibTorch or libgomp upgraded,
// or another BLAS selected, measures again; a new install or a rebuild of the addon over the same libraries does
// not (it was keyed by the addon's own file before, and every new install of the package paid the check, 4 to 12
// s on a 2-core machine). The choice is kept in the user's cache folder
// ($XDG_CACHE_HOME or ~/.cache, torchscript-node/), shared by every install of the package; a copy beside the
// addon, with the list of its libraries, lets later loads check the key with a few stat() calls and no `ldd`.
//
// OPENBLAS_CORETYPE set by the user always wins (and is only reported). TORCH_NODE_BLAS_CHECK=0 turns the
// choice off (OpenBLAS picks, as without this library). A LibTorch without OpenBLAS (PyPI's torch: MKL) has
// nothing to choose.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
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
/** Bumped when the check changes (here or in native/blas.cc), so that older choices are made again. */
const CHECK_VERSION = 1;

// Runs in the child: loads the addon (OPENBLAS_CORETYPE already in its environment), prints one JSON line.
const PROBE = `
const addon = require(process.argv[1]);
const blas = addon.runtimeInfo().blas;
addon.checkBlas(Number(process.argv[2])).then(
  (check) => console.log(JSON.stringify({ blas, check })),
  (err) => console.log(JSON.stringify({ blas, error: String(err && err.message || err) })),
);`;

let cpuinfoText: string | null | undefined;

/** /proc/cpuinfo's text, read once per process; null where there is none. */
function cpuinfo(): string | null {
  if (cpuinfoText === undefined) {
    try {
      cpuinfoText = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      cpuinfoText = null;
    }
  }
  return cpuinfoText;
}

/** One field of /proc/cpuinfo's first processor ('' where there is none). */
function cpuField(name: string): string {
  return new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo() ?? '')?.[1]?.trim() ?? '';
}

function cpuSignature(): string {
  if (cpuinfo() === null) return `${process.arch}-unknown`;
  return [cpuField('vendor_id'), cpuField('cpu family'), cpuField('model'), cpuField('model name'), cpuField('flags')].join('|');
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

/**
 * The fastest correct kernel; OpenBLAS's own pick unless another is faster by MIN_GAIN, or by twice the timing
 * noise measured (`noise`: how far apart two timings of OpenBLAS's own pick were, a fraction), or it is wrong.
 */
export function pick(trials: readonly KernelTrial[], noise = 0): KernelTrial | undefined {
  const correct = trials.filter((t) => t.correct);
  if (correct.length === 0) return undefined;
  const fastest = correct.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  const own = correct.find((t) => t.kernel === 'default');
  return own && own.gflops * Math.max(MIN_GAIN, 1 + 2 * noise) >= fastest.gflops ? own : fastest;
}

interface CacheEntry {
  version: number;
  key: string;
  choice: string | null;
  library: string | null;
  trials: KernelTrial[];
  /** How far apart two timings of OpenBLAS's own pick were (a fraction): the machine's noise as it was checked. */
  noise?: number;
  measuredAt: string;
}

/** The copy beside the addon: also the addon it is for, and the libraries its key was made of (null: no ldd). */
interface LocalEntry extends CacheEntry {
  addon: string;
  libraries: string[] | null;
}

/** The shared libraries the addon loads, as the dynamic loader resolves them now; undefined when ldd cannot say. */
function linkedLibraries(addonPath: string): string[] | undefined {
  const r = spawnSync('ldd', [addonPath], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || !r.stdout) return undefined;
  const paths: string[] = [];
  for (const line of r.stdout.split('\n')) {
    if (/=>\s*not found/.test(line)) return undefined; // the addon will not load: nothing to key
    const m = /=>\s*(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) paths.push(m[1]);
  }
  return paths.length > 0 ? relevantLibraries(paths) : undefined;
}

/** The libraries a matrix product runs through: LibTorch, its BLAS, its OpenMP runtime, oneDNN. */
const MATMUL_LIBRARY = /^lib(torch|c10|blas|cblas|openblas|flexiblas|blis|armpl|mkl|dnnl|mkldnn|gomp|iomp|omp)[-_.]/;
const BLAS_LIBRARY = /^lib(blas|cblas|openblas|flexiblas|blis|armpl|mkl)[-_.]|^libtorch_cpu[-_.]/;

/**
 * Of the addon's libraries (Debian's LibTorch loads some 280: OpenCV, FFmpeg, ...), those a matrix product
 * runs through, so that the key is checked with a few stat() calls. All of them where none is a BLAS this
 * knows (or LibTorch's, which may carry MKL inside): an unknown layout is keyed by everything.
 */
function relevantLibraries(paths: string[]): string[] {
  const relevant = paths.filter((p) => MATMUL_LIBRARY.test(path.basename(p)));
  return relevant.some((p) => BLAS_LIBRARY.test(path.basename(p))) ? relevant : paths;
}

/** Each library's resolved path, size and mtime: what identifies the code that runs; undefined if one is gone. */
function fingerprint(libraries: readonly string[]): string | undefined {
  try {
    return libraries
      .map((p) => {
        const real = realpathSync.native(p);
        const st = statSync(real);
        return `${p}>${real}|${st.size}|${st.mtimeMs}`;
      })
      .join('\n');
  } catch {
    return undefined;
  }
}

function keyOf(context: string, libraries: string): string {
  return createHash('sha256').update(`${context}\n${libraries}`).digest('hex');
}

/** The user's cache folder for the shared choices; undefined where there is no home. */
function cacheDir(): string | undefined {
  const base = process.env.XDG_CACHE_HOME || (homedir() ? path.join(homedir(), '.cache') : '');
  return base ? path.join(base, 'torchscript-node') : undefined;
}

/**
 * Where the choice for `key` is kept: the user's cache folder only. Never a shared temporary folder: anyone on
 * the machine could plant an entry there (the key is computed from public facts), and a kernel the CPU cannot
 * run kills every process that loads the addon (SIGILL). Without a home, only the copy beside the addon is kept.
 */
function sharedFiles(key: string): string[] {
  const dir = cacheDir();
  return dir ? [path.join(dir, `blas-kernel-${key.slice(0, 16)}.json`)] : [];
}

/** This CPU's flags, from /proc/cpuinfo ('' where there is none). */
function cpuFlags(): string {
  return cpuField('flags');
}

/**
 * Whether a kept entry may be applied: its choice is none, or a kernel this CPU can run (one of the candidates for
 * its flags) whose own trial computed correct results. A file edited by hand or gone stale is measured again.
 */
export function applicable(entry: Pick<CacheEntry, 'choice' | 'trials'>, flags: string): boolean {
  if (entry.choice === null || entry.choice === undefined) return true;
  return candidateKernels(flags).includes(entry.choice) && entry.trials.some((t) => t.kernel === entry.choice && t.correct === true);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined; // absent or unreadable
  }
}

function readCache(files: string[], key: string): { entry: CacheEntry; file: string } | undefined {
  for (const file of files) {
    const entry = readJson<CacheEntry>(file);
    if (entry?.version === CHECK_VERSION && entry.key === key && Array.isArray(entry.trials) && applicable(entry, cpuFlags())) return { entry, file };
  }
  return undefined;
}

/** Written to the first of `files` that can be written; the file, or undefined. */
function writeCache(files: string[], entry: CacheEntry): string | undefined {
  for (const file of files) {
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const temporary = `${file}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify(entry, null, 2)}\n`);
      renameSync(temporary, file);
      return file;
    } catch {
      // not writable (a read-only install, no home): the next place
    }
  }
  return undefined;
}

function measure(addonPath: string, key: string): CacheEntry {
  const threads = availableParallelism();
  const flags = cpuFlags();
  const trials: (KernelTrial & { library: string | null })[] = [];
  for (const kernel of candidateKernels(flags)) {
    const result = trial(addonPath, kernel, threads);
    trials.push(result);
    // Not OpenBLAS (or the addon does not load): nothing to choose between.
    if (kernel === 'default' && result.library !== 'OpenBLAS') break;
  }
  // The choice is kept for every later load on this machine: on a busy one, the timings say little (one check on
  // a 2-core machine running a compile timed OpenBLAS's own pick at 18 GFLOP/s against 164 quiet, and another
  // kernel 17 % faster). OpenBLAS's own pick is timed again after the others: the two timings' spread is the
  // noise, and another kernel must beat the better of them by twice that. The 4x of a wrong pick (700 ms against
  // 165) still shows; a busy machine's random gain of 20 % does not. Wrong results show regardless.
  let noise = 0;
  const own = trials[0];
  if (trials.length > 1 && own?.correct) {
    const again = trial(addonPath, 'default', threads);
    if (again.correct) {
      noise = Math.abs(again.gflops - own.gflops) / Math.max(again.gflops, own.gflops);
      own.gflops = Math.max(own.gflops, again.gflops);
    } else {
      // It could not run (noise unknown: only a large gain counts), or it computed wrong results this time.
      noise = 1;
      if (!again.error) own.correct = false;
      trials.push({ ...again, kernel: 'default (again)' });
    }
  }
  const best = pick(trials, noise);
  return {
    version: CHECK_VERSION,
    key,
    library: trials[0]?.library ?? null,
    choice: best && best.kernel !== 'default' ? best.kernel : null,
    trials: trials.map(({ library: _library, ...t }) => t),
    noise,
    measuredAt: new Date().toISOString(),
  };
}

/**
 * The choice for the addon at `addonPath`: from the copy beside it when its libraries are unchanged (no process
 * started), else from the user's cache under the key of the libraries ldd resolves now, else measured now.
 */
function cachedOrMeasured(addonPath: string, addonStamp: string): { entry: CacheEntry; cacheFile: string | undefined } {
  const context = [
    `check ${CHECK_VERSION}`,
    cpuSignature(),
    `threads ${availableParallelism()}`,
    `OPENBLAS_L2_SIZE=${process.env.OPENBLAS_L2_SIZE ?? ''}`,
    `LD_LIBRARY_PATH=${process.env.LD_LIBRARY_PATH ?? ''}`,
    `LD_PRELOAD=${process.env.LD_PRELOAD ?? ''}`,
  ].join('\n');
  const material = (libraries: readonly string[] | null | undefined) => (libraries ? fingerprint(libraries) : `addon ${addonStamp}`);
  const localFile = path.join(path.dirname(addonPath), 'blas-kernel.json');
  const local = readJson<LocalEntry>(localFile);
  if (
    local?.version === CHECK_VERSION &&
    local.addon === addonStamp &&
    local.libraries !== undefined &&
    Array.isArray(local.trials) &&
    applicable(local, cpuFlags())
  ) {
    const libraries = material(local.libraries);
    if (libraries !== undefined && keyOf(context, libraries) === local.key) return { entry: local, cacheFile: localFile };
  }
  const libraries = linkedLibraries(addonPath);
  const key = keyOf(context, material(libraries) ?? `addon ${addonStamp}`);
  const shared = readCache(sharedFiles(key), key);
  const entry = shared?.entry ?? measure(addonPath, key);
  // A check that could not run (the child failed or timed out: a busy machine) taught nothing: not kept.
  if (!entry.trials[0] || entry.trials[0].error) return { entry, cacheFile: undefined };
  const sharedFile = shared?.file ?? writeCache(sharedFiles(key), entry);
  const copy: LocalEntry = { ...entry, addon: addonStamp, libraries: libraries ?? null };
  const localWritten = writeCache([localFile], copy);
  return { entry, cacheFile: sharedFile ?? localWritten };
}

/**
 * Chooses the kernel for the addon at `addonPath` and sets OPENBLAS_CORETYPE for this process accordingly.
 * Call it before the addon is loaded. Synchronous: the first call on a machine (for its libraries) runs the
 * trials (a few seconds, in child processes); later ones read the kept choice.
 */
export function chooseBlasKernel(addonPath: string): BlasChoice {
  if (process.env.OPENBLAS_CORETYPE) return { source: 'environment', coretype: undefined, trials: [], cacheFile: undefined };
  if (process.env.TORCH_NODE_BLAS_CHECK === '0') {
    return { source: 'library default', coretype: undefined, trials: [], cacheFile: undefined, note: 'TORCH_NODE_BLAS_CHECK=0' };
  }
  let addonStamp = '';
  try {
    const st = statSync(addonPath);
    addonStamp = `${addonPath}|${st.size}|${st.mtimeMs}`;
  } catch {
    return { source: 'library default', coretype: undefined, trials: [], cacheFile: undefined, note: `no addon at ${addonPath}` };
  }
  const { entry, cacheFile } = cachedOrMeasured(addonPath, addonStamp);
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
