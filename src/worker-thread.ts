// Starts a worker thread on a module beside the caller: its built .js, or, when the caller runs from its
// TypeScript source (tsx, vitest), the .ts through tsx's loader, registered in the worker first.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** `name` without extension, relative to `callerUrl` (the caller's import.meta.url). */
export function startWorker(name: string, callerUrl: string): Worker {
  const fromSource = path.extname(new URL(callerUrl).pathname) === '.ts';
  const url = new URL(`${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  if (!fromSource) return new Worker(url);
  const [api, file] = [JSON.stringify(import.meta.resolve('tsx/esm/api')), JSON.stringify(url.href)];
  return new Worker(`import(${api}).then((tsx) => tsx.tsImport(${file}, ${file}))`, { eval: true });
}
