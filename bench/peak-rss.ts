// The service's peak resident memory for the load studies, read from /proc (Linux): summed over the process
// and its descendants (with WORKERS, the primary and its workers), reset before each load level.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** The process and its descendants. */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (const task of (() => {
    try {
      return readdirSync(`/proc/${pid}/task`);
    } catch {
      return [];
    }
  })()) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      // gone
    }
    for (const child of children.split(/\s+/).filter(Boolean).map(Number)) pids.push(...processTree(child));
  }
  return pids;
}

/** The peak resident size (VmHWM) of the processes since the last resetPeakRss, summed. */
export function peakRssMb(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      kb += Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

/** Resets VmHWM to the current RSS (writing 5 to clear_refs), so that each load level has its own peak. */
export function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // not permitted here: the peak is then the peak so far, which the report says
    }
  }
}
