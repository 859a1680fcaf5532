// Images decoded whole (CMYK, or with alpha) are decoded, converted and resized in a worker thread
// (whole-decode-worker.ts), started on the first such image and kept (idle, it does not keep the process alive).
// The event loop only posts the upload's bytes and receives the crop.
import type { Worker } from 'node:worker_threads';

import type { SharpOptions } from 'sharp';

import { startWorker } from '../worker-thread.js';
import type { Region, WholeDecodeReply, WholeDecodeRequest } from './whole-decode-worker.js';

export type { Region } from './whole-decode-worker.js';

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, { resolve: (rgb: Uint8Array) => void; reject: (err: Error) => void }>();

function start(): Worker {
  const w = startWorker('./whole-decode-worker', import.meta.url);
  w.on('message', (reply: WholeDecodeReply) => {
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
  w.on('exit', () => fail(new Error('The whole-image decoder (a worker thread) stopped')));
  w.unref();
  return w;
}

/**
 * `region` of an image as 8-bit RGB (HWC, PIL's convert('RGB'): CMYK by PIL's formula, alpha dropped), or, with
 * `resize`, that region resized and cropped. Rejects with sharp's error when the image cannot be decoded.
 * `input` is copied to the worker: the caller keeps it.
 */
export function decodeWhole(
  input: Uint8Array,
  decode: SharpOptions,
  options: { cmyk: boolean; region: Region; resize?: WholeDecodeRequest['resize'] },
): Promise<Uint8Array> {
  worker ??= start();
  const w = worker;
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    if (pending.size === 1) w.ref();
    w.postMessage({ id, input, decode, ...options } satisfies WholeDecodeRequest);
  });
}
