// Images decoded whole (CMYK, or with alpha) are decoded, converted and resized in a worker thread
// (whole-decode-worker.ts), started on the first such image and kept (idle, it does not keep the process alive).
// The event loop only posts the upload's bytes and receives the crop.
import type { Worker } from 'node:worker_threads';

import type { SharpOptions } from 'sharp';

import { startWorker } from '../worker-thread.js';
import type { Region } from './sharp-steps.js';
import type { WholeDecodeReply, WholeDecodeRequest } from './whole-decode-worker.js';

/** The worker failed or stopped: a fault of this process, not of the image. */
export class WholeDecoderError extends Error {
  override readonly name = 'WholeDecoderError';
}

interface Decoder {
  worker: Worker;
  pending: Map<number, { resolve: (rgb: Uint8Array) => void; reject: (err: Error) => void }>;
}

let current: Decoder | undefined;
let nextId = 1;

function start(): Decoder {
  const decoder: Decoder = { worker: startWorker('./whole-decode-worker', import.meta.url), pending: new Map() };
  const { worker, pending } = decoder;
  worker.on('message', (reply: WholeDecodeReply) => {
    const waiting = pending.get(reply.id);
    if (!waiting) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if ('error' in reply) waiting.reject(new Error(reply.error));
    else waiting.resolve(reply.rgb);
  });
  // 'error' then 'exit': the first one fails what this worker had, and the next image starts another.
  const fail = (err: Error) => {
    if (current === decoder) current = undefined;
    for (const { reject } of pending.values()) reject(err);
    pending.clear();
  };
  worker.on('error', (err) => fail(new WholeDecoderError(`The whole-image decoder failed: ${err.message}`, { cause: err })));
  worker.on('exit', () => fail(new WholeDecoderError('The whole-image decoder (a worker thread) stopped')));
  worker.unref();
  return decoder;
}

/**
 * `region` of an image as 8-bit RGB (HWC, PIL's convert('RGB'): CMYK by PIL's formula, alpha dropped), or, with
 * `resize`, that region resized and cropped. Rejects with sharp's error when the image cannot be decoded, with a
 * WholeDecoderError when the worker fails. `input` is copied to the worker: the caller keeps it.
 */
export function decodeWhole(
  input: Uint8Array,
  decode: SharpOptions,
  options: { cmyk: boolean; region: Region; resize?: WholeDecodeRequest['resize'] },
): Promise<Uint8Array> {
  current ??= start();
  const { worker, pending } = current;
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    if (pending.size === 1) worker.ref();
    try {
      worker.postMessage({ id, input, decode, ...options } satisfies WholeDecodeRequest);
    } catch (err) {
      pending.delete(id);
      if (pending.size === 0) worker.unref();
      reject(err);
    }
  });
}
