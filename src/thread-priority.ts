// Thread priorities (nice values), Linux only: there the nice value belongs to each thread (setpriority(2) with a
// thread id), and a thread starts with the nice value of the thread that created it. The event loop's thread
// (the main thread, whose thread id is the process id) keeps its priority; threads that compute (ONNX
// Runtime's forwards, decodes) are lowered to `niceness` above it, so that when the cores are all busy, a
// request (a /health probe, a cached answer, the next upload's bytes) is read as soon as it arrives instead of
// after the busy threads' time slices. The target is absolute (the main thread's value plus `niceness`, at most
// 19): lowering a thread twice, from here and from the thread itself, never lowers it further.
import { readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';

/** How much higher than the event loop's the nice value of the service's other threads is. */
export const BACKGROUND_NICENESS = 10;

const linux = process.platform === 'linux';

function target(niceness: number): number {
  return Math.min(19, getPriority(process.pid) + niceness);
}

/** Lowers the calling thread (a worker thread: its own event loop) to `niceness` above the main thread's. */
export function lowerThisThread(niceness = BACKGROUND_NICENESS): void {
  if (!linux || niceness <= 0) return;
  const wanted = target(niceness);
  if (getPriority(0) < wanted) setPriority(0, wanted);
}

/**
 * Lowers every thread of this process except the main thread to `niceness` above the main thread's; threads
 * started from the lowered ones later (libvips' and LibTorch's, from libuv's pool) inherit the lower priority.
 * Returns the number of threads changed: 0 where threads have no nice value of their own, or /proc cannot be
 * read.
 */
export function lowerOtherThreads(niceness = BACKGROUND_NICENESS): number {
  if (!linux || niceness <= 0) return 0;
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  const wanted = target(niceness);
  let changed = 0;
  for (const name of tids) {
    const tid = Number(name);
    if (tid === process.pid) continue;
    try {
      if (getPriority(tid) < wanted) {
        setPriority(tid, wanted);
        changed++;
      }
    } catch {
      // The thread ended since the folder was read.
    }
  }
  return changed;
}

/**
 * lowerOtherThreads once libuv's pool is up (a file system call first: libuv starts all the pool's threads on
 * its first task), and again every `everyMs` (a look at /proc/self/task: a few dozen system calls) for the
 * threads started since by the main thread, which start at its priority (a worker thread's helpers). Returns the
 * number lowered now and the function that stops the looks (they never keep the process alive).
 */
export async function keepOtherThreadsLowered(niceness = BACKGROUND_NICENESS, everyMs = 1000): Promise<{ lowered: number; stop: () => void }> {
  if (!linux) return { lowered: 0, stop: () => {} };
  await stat('/proc/self').catch(() => undefined);
  const lowered = lowerOtherThreads(niceness);
  const timer = setInterval(() => lowerOtherThreads(niceness), everyMs).unref();
  return { lowered, stop: () => clearInterval(timer) };
}
