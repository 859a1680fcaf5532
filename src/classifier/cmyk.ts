// CMYK images decoded and converted to RGB in a worker thread (cmyk-worker.ts), started on the first CMYK
// image and kept (idle, it does not keep the process alive). The event loop only posts the upload's bytes.
import type { Worker } from 'node:worker_threads';

import type { SharpOptions } from 'sharp';

import { startWorker } from '../worker-thread.js';
import type { CmykReply, CmykRequest } from './cmyk-worker.js';

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, { resolve: (rgb: Uint8Array) => void; reject: (err: Error) => void }>();

function start(): Worker {
  const w = startWorker('./cmyk-worker', import.meta.url);
  w.on('message', (reply: CmykReply) => {
    const waiting = pending.get(reply.id);
    if (!waiting) return;
    pending.delete(reply.id);
    if (pending.size === 0) w.unref();
    if ('error' in reply) waiting.reject(new Error(reply.error));
    else waiting.resolve(reply.rgb);
  });
  const fail = (err: Error) => {
    worker = undefined;
    for (const { reject } of pending.values()) reject(err);
    pending.clear();
  };
  w.on('error', fail);
  w.on('exit', () => fail(new Error('The CMYK worker stopped')));
  w.unref();
  return w;
}

/**
 * A region of a CMYK image as 8-bit RGB (HWC, PIL's formula). Rejects with sharp's error when the image cannot
 * be decoded. `input` is copied to the worker: the caller keeps it.
 */
export function decodeCmykAsRgb(input: Uint8Array, decode: SharpOptions, region: CmykRequest['region']): Promise<Uint8Array> {
  worker ??= start();
  const w = worker;
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    if (pending.size === 1) w.ref();
    w.postMessage({ id, input, decode, region } satisfies CmykRequest);
  });
}
