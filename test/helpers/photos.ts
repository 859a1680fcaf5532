// Photos for the service's tests: ../shared/data's when present, else JPEGs made with sharp (the tests that use
// these need no particular photo).
import { readFileSync } from 'node:fs';

import sharp from 'sharp';

import { sharedPhotos } from './torchvision.js';

const shared = sharedPhotos();
if (shared.val.length === 0 || shared.samples.length === 0) {
  console.warn('[test/helpers/photos] ../shared/data is absent: synthetic JPEGs stand in for the photos');
}

/** Small photos (validation photos, ~500 px) for many fast predictions. */
export async function smallPhotos(count: number): Promise<Buffer[]> {
  if (shared.val.length > 0) return Array.from({ length: count }, (_, i) => readFileSync(shared.val[(i * 7) % shared.val.length]));
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      sharp({ create: { width: 480, height: 360, channels: 3, background: { r: (i * 53) % 256, g: (i * 97) % 256, b: (i * 31) % 256 } } })
        .composite([
          { input: { create: { width: 160, height: 120, channels: 3, background: { r: 255 - ((i * 53) % 256), g: 40, b: 200 } } }, left: 60 + i * 10, top: 50 },
        ])
        .jpeg()
        .toBuffer(),
    ),
  );
}

/** A large photo (several megapixels: its decoding and resizing take a while) for slow-ish predictions. */
export async function largePhoto(): Promise<Buffer> {
  if (shared.samples.length > 0) {
    return shared.samples.map((f) => readFileSync(f)).reduce((a, b) => (b.length > a.length ? b : a));
  }
  // 12 megapixels of noise: about 3.5 MB, under the default upload limit (10 MiB)
  return sharp({ create: { width: 4000, height: 3000, channels: 3, background: '#a05030', noise: { type: 'gaussian', mean: 120, sigma: 20 } } })
    .jpeg({ quality: 80 })
    .toBuffer();
}

/**
 * The same JPEG with a comment segment (FF FE) after its start marker: other bytes (another cache key), the same
 * pixels (the same answer). A way to make the model compute again what it computed before.
 */
export function withComment(jpeg: Buffer, comment: string): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('withComment: not a JPEG (no FF D8 start marker)');
  const payload = Buffer.from(comment, 'latin1');
  const header = Buffer.from([0xff, 0xfe, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  return Buffer.concat([jpeg.subarray(0, 2), header, payload, jpeg.subarray(2)]);
}
