import type { BlasKernelSource, KernelTrial } from './blas-kernel.js';
import { binding, LOG_LEVELS, type LogLevel } from './binding.js';
import { invalid } from './validate.js';

export type { LogLevel } from './binding.js';

export interface BlasRuntimeInfo {
  /** `OpenBLAS`, `MKL`, or null when unknown. */
  library: string | null;
  /** e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY USE_OPENMP SkylakeX MAX_THREADS=64`. */
  config: string | null;
  /** The OpenBLAS kernel in use (`SkylakeX`, `Haswell`, ...); null when not OpenBLAS. */
  kernel: string | null;
  /** Why that kernel: OPENBLAS_CORETYPE from the environment, measured by the library, OpenBLAS's own pick. */
  source: BlasKernelSource;
  /** The kernels tried, with their speed and their largest error against a double-precision reference. */
  trials: KernelTrial[];
}

export interface RuntimeInfo {
  /** The LibTorch version the addon was compiled against. */
  libtorchVersion: string;
  /** The addon is linked against a LibTorch with CUDA kernels. */
  builtWithCuda: boolean;
  /** ... and a CUDA device can be used now. */
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  /** The name of CUDA device 0, or null. */
  cudaDeviceName: string | null;
  /** LibTorch's own default of intra-op threads (models set theirs with the `threads` option). */
  defaultThreads: number;
  /** The native addon file in use (cmake-js's or node-gyp's build). */
  addonPath: string;
  /** The BLAS LibTorch's matrix products run on, and its kernel (see src/torch/blas-kernel.ts). */
  blas: BlasRuntimeInfo;
}

/** What LibTorch this process runs, and which devices it can use. Loads the addon on first call. */
export function runtimeInfo(): RuntimeInfo {
  const { binding: native, path, blas } = binding();
  const info = native.runtimeInfo();
  return {
    ...info,
    addonPath: path,
    blas: { library: info.blas.library, config: info.blas.config, kernel: info.blas.kernel, source: blas.source, trials: blas.trials },
  };
}

/**
 * What LibTorch's warnings (TORCH_WARN: `Resize.cpp`, deprecations, ...) become, for the whole process, worker
 * threads included: `'warn'` (the default) writes each distinct warning once to stderr, prefixed
 * `torchscript-node: LibTorch warning:`; `'info'` writes every one, every time (LibTorch's own behaviour);
 * `'error'` writes none. The environment variable TORCH_NODE_LOG_LEVEL sets it as the addon loads.
 */
export function setLogLevel(level: LogLevel): void {
  if (!(LOG_LEVELS as readonly unknown[]).includes(level)) {
    invalid("'error', 'warn' or 'info'", 'the log level', level, typeof level === 'string' ? 'range' : 'type');
  }
  binding().binding.setLogLevel(level);
}
