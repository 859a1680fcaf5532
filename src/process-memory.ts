// Hands the memory the C allocator kept after large frees back to the system (native/memory/memory.cc):
// loading a model parses hundreds of megabytes into temporary buffers whose pages glibc would otherwise keep.
// The service calls it after each model load and after a replaced model is freed. A no-op where the small
// addon is not built or the C library is not glibc.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { packageRoot } from './torch/binding.js';

interface MemoryAddon {
  releaseFreeMemory(): boolean;
  limitArenas(count: number): boolean;
  supported(): boolean;
}

let addon: MemoryAddon | null | undefined;

function load(): MemoryAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  const root = packageRoot();
  // Beside the main addon that is in use (TORCH_NODE_ADDON), else cmake-js's build, else node-gyp's.
  const explicit = process.env.TORCH_NODE_ADDON;
  const dirs = [...(explicit ? [path.dirname(path.resolve(explicit))] : []), path.join(root, 'build', 'cmake', 'Release'), path.join(root, 'build', 'Release')];
  for (const dir of dirs) {
    const file = path.join(dir, 'torch_node_memory.node');
    if (!existsSync(file)) continue;
    try {
      addon = createRequire(import.meta.url)(file) as MemoryAddon;
      break;
    } catch {
      // not loadable here (another platform's build): try the next
    }
  }
  return addon;
}

/** Returns freed heap pages to the system (glibc's malloc_trim). False when nothing could be done. */
export function releaseFreeMemory(): boolean {
  return load()?.releaseFreeMemory() ?? false;
}

/**
 * At most `count` malloc arenas (glibc's M_ARENA_MAX; by default up to 8 per core, one per thread that allocates
 * at the same time as another). Fewer arenas hold fewer freed pages apart: a long-running service with worker
 * threads keeps a steadier resident size. Call it early, before the threads start. False when not applied.
 */
export function limitMallocArenas(count: number): boolean {
  return load()?.limitArenas(count) ?? false;
}
