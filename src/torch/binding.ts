// Finds and loads the native addon once, and hands it the error class that native errors are made of.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

import { chooseBlasKernel, type BlasChoice } from './blas-kernel.js';
import { TorchError } from './errors.js';
import type { NativeArgument } from './forward-args.js';
import type { DType } from './tensor.js';

export interface NativeTensor {
  name?: string;
  dtype: DType;
  shape: readonly number[];
  data: ArrayBufferView;
}

export interface NativeResult {
  kind: 'tensor' | 'tuple' | 'list' | 'dict';
  tensors: NativeTensor[];
}

export interface NativeModelInfo {
  path: string;
  device: string;
  threads: number;
  optimized: boolean;
  inferenceThread: 'own' | 'shared';
  forwardSchema: string;
  inputNames: string[];
  /** forward's arguments without self: name, TorchScript type, default (native/forward_args.cc). */
  inputs: NativeArgument[];
  /** forward's return type, as TorchScript writes it: `Tensor`, `Dict[str, Tensor]`, ... */
  outputType: string;
  /** The dtypes of the model's parameters and buffers, read before freezing (for dtype errors' messages). */
  weightDtypes: string[];
  disposed: boolean;
}

export interface NativeModel {
  /** Tensors (NativeTensor-shaped objects) and plain values for non-tensor arguments, in forward's order. */
  forward(inputs: readonly unknown[]): Promise<NativeResult>;
  info(): NativeModelInfo;
  dispose(): Promise<void>;
}

export interface NativeBlasInfo {
  /** OpenBLAS, MKL, or null when unknown. */
  library: string | null;
  /** openblas_get_config(). */
  config: string | null;
  /** The kernel OpenBLAS runs (openblas_get_corename()). */
  kernel: string | null;
  /** The shared library OpenBLAS was loaded from. */
  path: string | null;
}

export interface NativeBlasCheck {
  cases: number;
  maxRelativeErrorFloat32: number;
  maxRelativeErrorFloat64: number;
  worstCase: string;
  gflops: number;
}

export interface NativeRuntimeInfo {
  libtorchVersion: string;
  builtWithCuda: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  cudaDeviceName: string | null;
  defaultThreads: number;
  blas: NativeBlasInfo;
}

interface NativeBinding {
  setErrorClass(cls: typeof TorchError): void;
  runtimeInfo(): NativeRuntimeInfo;
  load(
    path: string,
    options: { device: string; threads: number; optimize?: boolean; inferenceThread?: 'own' | 'shared'; bytes?: Uint8Array },
  ): Promise<NativeModel>;
  /** Waits up to timeoutMs for the running forward; past it, leaves the process at once with exitCode. */
  stopForExit(timeoutMs: number, exitCode: number): void;
  checkBlas(threads: number): Promise<NativeBlasCheck>;
  /** What LibTorch's warnings become, for the whole process (see setLogLevel in runtime.ts). */
  setLogLevel(level: LogLevel): void;
  /**
   * For the addon's own tests: failures made on purpose, how often CUDA was probed, and how many inference
   * threads run now (the shared one once started, and each model's own).
   */
  testing: { injectFault(name: 'output-conversion' | 'none'): void; cudaProbes(): number; inferenceThreads(): number };
}

/**
 * What LibTorch's warnings become: `'error'` none, `'warn'` each distinct warning once per process (the
 * default), `'info'` every warning every time. Errors always reach the caller as rejected promises.
 */
export type LogLevel = 'error' | 'warn' | 'info';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info'];

/** The log level TORCH_NODE_LOG_LEVEL asks for (default 'warn'). */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const raw = env.TORCH_NODE_LOG_LEVEL;
  if (raw === undefined || raw === '') return 'warn';
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) {
    throw new RangeError(`Expected 'error', 'warn' or 'info' for TORCH_NODE_LOG_LEVEL but received '${raw}'`);
  }
  return raw as LogLevel;
}

/** How long process.exit() waits for a running forward (TORCH_NODE_EXIT_WAIT_MS, default 10 s). */
export function exitWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.TORCH_NODE_EXIT_WAIT_MS;
  if (raw === undefined || raw === '') return 10_000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0 || ms > 86_400_000) {
    throw new RangeError(`Expected an integer number of milliseconds (0 to 86400000) for TORCH_NODE_EXIT_WAIT_MS but received '${raw}'`);
  }
  return ms;
}

export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'torchscript-node') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('torchscript-node: cannot find the package root');
    dir = parent;
  }
}

/** Where the addon is looked for: TORCH_NODE_ADDON, then cmake-js's build, then node-gyp's. */
export function addonCandidates(): string[] {
  const root = packageRoot();
  const explicit = process.env.TORCH_NODE_ADDON;
  if (explicit) return [path.resolve(explicit)];
  return [path.join(root, 'build', 'cmake', 'Release', 'torch_node.node'), path.join(root, 'build', 'Release', 'torch_node.node')];
}

/** This repository's checkout, with its own scripts (scripts/setup.sh, `npm run build:addon`); else an installed package. */
function inCheckout(): boolean {
  return existsSync(path.join(packageRoot(), 'scripts', 'setup.sh'));
}

/**
 * The addon is not there: why, and what to do, in commands that exist where the message is read. An installed
 * package's install script (scripts/install-addon.mjs) leaves build/addon-status.json when LibTorch or a build
 * tool was missing: its reason and advice are the line the install printed.
 */
function addonNotBuilt(candidates: string[]): TorchError {
  const looked = `looked for ${candidates.join(', ')}`;
  if (process.env.TORCH_NODE_ADDON) {
    return new TorchError(`The native addon named by TORCH_NODE_ADDON is not there (${looked}).`, 'ERR_ADDON_NOT_BUILT');
  }
  if (inCheckout()) {
    return new TorchError(
      `The native addon is not built (${looked}). ` +
        'Run `npm run build:addon` (cmake-js) or `npm run build:gyp` (node-gyp); scripts/setup.sh installs LibTorch first.',
      'ERR_ADDON_NOT_BUILT',
    );
  }
  let status: { reason?: unknown; advice?: unknown } = {};
  try {
    status = JSON.parse(readFileSync(path.join(packageRoot(), 'build', 'addon-status.json'), 'utf8'));
  } catch {
    // no status: the install script did not run (--ignore-scripts), or its build was removed
  }
  if (typeof status.reason === 'string' && typeof status.advice === 'string') {
    return new TorchError(
      `torchscript-node's TorchScript addon was not built when the package was installed: ${status.reason}. To use TorchModel: ${status.advice}.`,
      'ERR_ADDON_NOT_BUILT',
    );
  }
  return new TorchError(
    `torchscript-node's TorchScript addon is not built (${looked}): the package's install script did not run (npm --ignore-scripts?). ` +
      'To build it: `npm rebuild torchscript-node`, with LibTorch installed (`apt-get install libtorch-dev` on Debian/Ubuntu, or `pip install torch` ' +
      'and TORCH_PYTHON=/path/to/that/python set for the rebuild), cmake and a C++ compiler.',
    'ERR_ADDON_NOT_BUILT',
  );
}

let cached: { binding: NativeBinding; path: string; blas: BlasChoice } | undefined;

export function binding(): { binding: NativeBinding; path: string; blas: BlasChoice } {
  if (cached) return cached;
  // Checked first, before anything is loaded: a wrong value fails every use the same way, at once.
  const waitMs = exitWaitMs();
  const logLevel = envLogLevel();
  const candidates = addonCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw addonNotBuilt(candidates);
  // Before the addon (and with it OpenBLAS) loads: OpenBLAS reads OPENBLAS_CORETYPE once, as it starts.
  const blas = chooseBlasKernel(found);
  let native: NativeBinding;
  try {
    native = createRequire(import.meta.url)(found) as NativeBinding;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new TorchError(
      `Cannot load the native addon ${found}: ${reason}. ` +
        `If a LibTorch library is not found, the LibTorch it was built against has moved: rebuild with \`${inCheckout() ? 'npm run build:addon' : 'npm rebuild torchscript-node'}\`.`,
      'ERR_ADDON_LOAD',
    );
  }
  native.setErrorClass(TorchError);
  // Process-wide, and 'warn' in the addon already: set only when asked for, so that a worker thread's load does
  // not undo the main thread's setLogLevel().
  if (process.env.TORCH_NODE_LOG_LEVEL) native.setLogLevel(logLevel);
  // process.exit() during a forward: let the forward finish before exit() tears LibTorch down under it, for
  // TORCH_NODE_EXIT_WAIT_MS at most; past that the process leaves at once with its exit code (a model that
  // runs for minutes must not hold a stopping process). A worker thread's end is handled in the addon; the
  // inference threads serve the whole process (a worker's models' own threads too).
  if (isMainThread) process.once('exit', (code) => native.stopForExit(waitMs, typeof code === 'number' ? code : 0));
  cached = { binding: native, path: found, blas };
  return cached;
}
