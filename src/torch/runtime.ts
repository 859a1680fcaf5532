import { binding } from './binding.js';

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
}

/** What LibTorch this process runs, and which devices it can use. Loads the addon on first call. */
export function runtimeInfo(): RuntimeInfo {
  const { binding: native, path } = binding();
  return { ...native.runtimeInfo(), addonPath: path };
}
