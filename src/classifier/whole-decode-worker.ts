// The worker thread of whole-decode.ts. An image that must be decoded whole before it is resized (CMYK, or with
// alpha: PIL's convert('RGB') semantics, see preprocess.ts) is decoded, converted to RGB and, when asked,
// resized and cropped here, so that the event loop's thread never holds the whole image: a 6000x6000 photo is
// 108 MB of RGB, and each such buffer in the main thread's heap also made its garbage collector run a full
// collection, pausing the event loop. Only the crop (or, for a small image, the region asked for) goes back.
// Up to as many requests as the machine has cores run side by side (the classifier's decode lanes bound them
// further); more wait their turn here, so that a caller without a bound cannot decode a dozen at once.
import { availableParallelism } from 'node:os';
import { parentPort } from 'node:worker_threads';

import sharp, { type SharpOptions } from 'sharp';

import { lowerThisThread } from '../thread-priority.js';
import { cmykToRgb } from './cmyk-convert.js';
import { type Region, resizeAndCrop, rgbRegion } from './sharp-steps.js';

export interface WholeDecodeRequest {
  id: number;
  input: Uint8Array;
  decode: SharpOptions;
  /** CMYK (PIL's formula, no colour profile); else the alpha channel is dropped (not composited). */
  cmyk: boolean;
  /** The part of the image decoded. */
  region: Region;
  /** Then: resized to width x height (PIL's bilinear, as preprocess.ts's downscaleCrop) and `crop` extracted. */
  resize?: { width: number; height: number; crop: Region };
}

export type WholeDecodeReply = { id: number; rgb: Uint8Array } | { id: number; error: string };

const port = parentPort!;
// The decoding yields the cores to the event loop (and sharp's own threads come from libuv's pool).
lowerThisThread();

/** The region as 8-bit RGB, HWC, converted as PIL's convert('RGB') does. */
async function rgbOf({ input, decode, cmyk, region }: WholeDecodeRequest): Promise<Uint8Array> {
  if (cmyk) {
    const { data, info } = await sharp(input, decode)
      .extract(region)
      .pipelineColourspace('cmyk')
      .toColourspace('cmyk')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return cmykToRgb(data, info.channels, info.width * info.height);
  }
  return rgbRegion(input, decode, region).toBuffer();
}

async function handle(request: WholeDecodeRequest): Promise<void> {
  try {
    let rgb = await rgbOf(request);
    const { region, resize } = request;
    if (resize) {
      // (The size was checked against the pixel limit already; sharp's own default would only get in the way.)
      const source = sharp(rgb, { raw: { width: region.width, height: region.height, channels: 3 }, limitInputPixels: false });
      rgb = await resizeAndCrop(source, resize, resize.crop).toBuffer();
    }
    // A copy of a crop is small; the region of an image enlarged is at most about 226x226 pixels.
    port.postMessage({ id: request.id, rgb } satisfies WholeDecodeReply);
  } catch (err) {
    port.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) } satisfies WholeDecodeReply);
  }
}

const MAX_RUNNING = availableParallelism();
const waiting: WholeDecodeRequest[] = [];
let running = 0;
function next(): void {
  while (running < MAX_RUNNING && waiting.length > 0) {
    running++;
    void handle(waiting.shift()!).finally(() => {
      running--;
      next();
    });
  }
}

port.on('message', (request: WholeDecodeRequest) => {
  waiting.push(request);
  next();
});
