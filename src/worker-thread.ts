// Starts a worker thread on a module beside the caller: its built .js, or, when the caller runs from its
// TypeScript source (tsx, vitest), the .ts through tsx's loader, registered in the worker first.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * A worker inherits the process's Node options, and Node refuses to start one when they hold `--input-type`
 * (a process started as `node --input-type=module -e '...'`), which only means something for the main script.
 * Only then are the options given explicitly, without it: and as Node also refuses V8 options given that way
 * (`--max-old-space-size`), a worker refused with those gets none.
 */
function newWorker(target: URL | string, options: { eval?: boolean } = {}): Worker {
  if (!process.execArgv.some((arg) => arg.startsWith('--input-type'))) return new Worker(target, options);
  const execArgv = process.execArgv.filter((arg, i, all) => !arg.startsWith('--input-type') && all[i - 1] !== '--input-type');
  try {
    return new Worker(target, { ...options, execArgv });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    return new Worker(target, { ...options, execArgv: [] });
  }
}

/** `name` without extension, relative to `callerUrl` (the caller's import.meta.url). */
export function startWorker(name: string, callerUrl: string): Worker {
  const fromSource = path.extname(new URL(callerUrl).pathname) === '.ts';
  const url = new URL(`${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  if (!fromSource) return newWorker(url);
  const [api, file] = [JSON.stringify(import.meta.resolve('tsx/esm/api')), JSON.stringify(url.href)];
  return newWorker(`import(${api}).then((tsx) => tsx.tsImport(${file}, ${file}))`, { eval: true });
}
