// The event loop first: every other thread of the service runs at a lower priority (a higher nice value), so
// that when the cores are all busy decoding and computing, a request (a /health probe, a cached answer, the
// next upload's bytes) is read as soon as it arrives instead of after the busy threads' time slices.
//
// Linux only, where the nice value belongs to each thread (setpriority(2) with a thread id), and a thread
// starts with the nice value of the thread that created it. The threads lowered here: libuv's pool (sharp's
// decodes, file reads, hashing), the threads libvips and LibTorch start from it (they inherit its nice value,
// also those started later), V8's helpers (garbage collection, compilation) and any worker thread. ONNX
// Runtime's session worker and the CMYK worker lower themselves as they start; threads started later by the
// event loop's thread itself (a worker thread's own helpers) are caught by keepOtherThreadsLowered's next look.
import { readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';

/** How much lower than the event loop's the other threads' priority is (the nice value they get at least). */
export const BACKGROUND_NICENESS = 10;

/**
 * Raises the nice value of every thread of this process except the main thread (the event loop's, whose thread
 * id is the process id) to at least `niceness`. Call it from the main thread, once libuv's pool is in use (it
 * makes sure: libuv starts all the pool's threads on its first task). Resolves to the number of threads
 * changed; 0 where the platform has no per-thread nice value.
 */
export async function lowerOtherThreads(niceness = BACKGROUND_NICENESS): Promise<number> {
  if (process.platform !== 'linux') return 0;
  await stat('/proc/self/task');
  let changed = 0;
  for (const name of readdirSync('/proc/self/task')) {
    const tid = Number(name);
    if (tid === process.pid) continue;
    try {
      if (getPriority(tid) < niceness) {
        setPriority(tid, niceness);
        changed++;
      }
    } catch {
      // The thread ended since the folder was read.
    }
  }
  return changed;
}

/**
 * lowerOtherThreads now, and again every `everyMs` (a look at /proc/self/task: a few dozen system calls) for the
 * threads started since by the event loop's thread, which start at its nice value. Returns the function that
 * stops the looks (they never keep the process alive).
 */
export async function keepOtherThreadsLowered(niceness = BACKGROUND_NICENESS, everyMs = 1000): Promise<{ lowered: number; stop: () => void }> {
  const lowered = await lowerOtherThreads(niceness);
  if (process.platform !== 'linux') return { lowered, stop: () => {} };
  const timer = setInterval(() => void lowerOtherThreads(niceness).catch(() => {}), everyMs).unref();
  return { lowered, stop: () => clearInterval(timer) };
}
