// Starts a worker thread on a module beside the caller: its built .js, or, when the caller runs from its
// TypeScript source (tsx, vitest), the .ts through tsx's loader, registered in the worker first.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The process's Node options that a worker may take: a worker inherits them, and Node refuses to start one
 * with `--input-type` (given to a process started as `node --input-type=module -e '...'`), which only means
 * something for the main script.
 */
function workerExecArgv(): string[] {
  return process.execArgv.filter((arg, i, all) => !arg.startsWith('--input-type') && all[i - 1] !== '--input-type');
}

/** `name` without extension, relative to `callerUrl` (the caller's import.meta.url). */
export function startWorker(name: string, callerUrl: string): Worker {
  const fromSource = path.extname(new URL(callerUrl).pathname) === '.ts';
  const url = new URL(`${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  const execArgv = workerExecArgv();
  if (!fromSource) return new Worker(url, { execArgv });
  const [api, file] = [JSON.stringify(import.meta.resolve('tsx/esm/api')), JSON.stringify(url.href)];
  return new Worker(`import(${api}).then((tsx) => tsx.tsImport(${file}, ${file}))`, { eval: true, execArgv });
}
