// The worker thread of cmyk.ts: decodes a region of a CMYK image with sharp and converts it to RGB with PIL's
// formula, off the event loop (a CMYK photo can have tens of millions of pixels: a second of arithmetic).
// Requests are handled one at a time; the RGB bytes go back transferred, not copied.
import { getPriority, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';

import sharp, { type SharpOptions } from 'sharp';

import { cmykToRgb } from './cmyk-convert.js';

export interface CmykRequest {
  id: number;
  input: Uint8Array;
  decode: SharpOptions;
  region: { left: number; top: number; width: number; height: number };
}

export type CmykReply = { id: number; rgb: Uint8Array; width: number; height: number; channels: number } | { id: number; error: string };

const port = parentPort!;
// On Linux a thread's nice value is its own: the arithmetic yields the cores to the event loop.
if (process.platform === 'linux') setPriority(0, Math.min(19, getPriority(0) + 10));
let queue: Promise<void> = Promise.resolve();

async function handle(request: CmykRequest): Promise<void> {
  try {
    const { data, info } = await sharp(request.input, request.decode)
      .extract(request.region)
      .pipelineColourspace('cmyk')
      .toColourspace('cmyk')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const rgb = cmykToRgb(data, info.channels, info.width * info.height);
    port.postMessage({ id: request.id, rgb, width: info.width, height: info.height, channels: info.channels } satisfies CmykReply, [rgb.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) } satisfies CmykReply);
  }
}

port.on('message', (request: CmykRequest) => {
  queue = queue.then(() => handle(request));
});
