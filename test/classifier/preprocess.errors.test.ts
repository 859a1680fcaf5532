// preprocessImage on uploads that are not usable images (empty, random bytes, truncated, SVG, a decompression
// bomb, over maxPixels): each rejects with an ImageError and the process stays healthy; and the event loop keeps
// turning during a big decode. The images are made here with sharp; no image file is committed. The comparison
// with torchvision + PIL is in preprocess.torchvision.test.ts.
import { randomBytes } from 'node:crypto';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { CROP, ImageError, preprocessImage } from '../../src/classifier/preprocess.js';
import { pngBomb } from '../helpers/images.js';
import { absDiff } from '../helpers/torchvision.js';
import { noise, raw, smooth } from './preprocess.shared.js';

const AREA = CROP * CROP;

/** A PNG declaring width x height 1-bit pixels, of zeros: about 110 kB for 30000x30000 (900 megapixels). */
let bombCache: Buffer | undefined;
function bomb(): Buffer {
  bombCache ??= pngBomb(30000, 30000);
  return bombCache;
}

// --- the tests -----------------------------------------------------------------------------------------

describe('uploads that are not usable images reject with an ImageError', () => {
  async function rejection(promise: Promise<unknown>): Promise<ImageError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ImageError);
    expect((error as ImageError).name).toBe('ImageError');
    return error as ImageError;
  }

  it('an empty file', async () => {
    for (const empty of [Buffer.alloc(0), new Uint8Array(0)]) {
      const e = await rejection(preprocessImage(empty));
      expect([e.code, e.message]).toEqual(['ERR_IMAGE_DECODE', 'The uploaded file is empty']);
    }
  });

  it('random bytes, text, and a header alone', async () => {
    for (const bytes of [randomBytes(5000), Buffer.from('Image of pizza'), Buffer.from('89504e470d0a1a0a', 'hex')]) {
      const e = await rejection(preprocessImage(bytes));
      expect(e.code).toBe('ERR_IMAGE_DECODE');
      expect(e.message).toBe('The uploaded file is not a decodable image (JPEG, PNG, WebP, GIF, TIFF or AVIF)');
      expect(e.details).not.toBe('');
    }
  });

  it('a truncated JPEG (its first half)', async () => {
    const jpeg = await raw(noise(800, 600, 3), 800, 600, 3)
      .jpeg()
      .toBuffer();
    const e = await rejection(preprocessImage(jpeg.subarray(0, jpeg.length >> 1)));
    expect(e.code).toBe('ERR_IMAGE_DECODE');
    expect(e.message).toMatch(/^The uploaded image is truncated or corrupt/);
    expect(e.details).toMatch(/premature end/i);
    // and a truncated enlargement (decoded by another path)
    const small = await raw(noise(200, 150, 3), 200, 150, 3)
      .jpeg()
      .toBuffer();
    expect((await rejection(preprocessImage(small.subarray(0, small.length >> 1)))).code).toBe('ERR_IMAGE_DECODE');
  });

  it('SVG, which sharp could render but is not accepted', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"><rect width="300" height="300"/></svg>');
    expect((await rejection(preprocessImage(svg))).code).toBe('ERR_IMAGE_DECODE');
  });

  it('a decompression bomb: a 110 kB PNG of 30000x30000 pixels, refused from its header', async () => {
    const png = bomb();
    expect(png.length).toBeLessThan(200_000);
    expect(await sharp(png, { limitInputPixels: false }).metadata()).toMatchObject({ width: 30000, height: 30000 });
    const rss = process.memoryUsage().rss;
    const e = await rejection(preprocessImage(png));
    expect(e.code).toBe('ERR_IMAGE_TOO_LARGE');
    expect(e.message).toBe('The uploaded image is too large: 30000x30000 pixels (900 megapixels); the limit is 40 megapixels');
    expect(process.memoryUsage().rss - rss).toBeLessThan(300e6); // 900 M pixels decoded would be 2.7 GB
  });

  it('maxPixels is width x height, inclusive', async () => {
    const png = await raw(noise(1000, 1000, 3), 1000, 1000, 3)
      .png()
      .toBuffer();
    const e = await rejection(preprocessImage(png, { maxPixels: 999_999 }));
    expect(e.code).toBe('ERR_IMAGE_TOO_LARGE');
    expect(e.message).toBe('The uploaded image is too large: 1000x1000 pixels (1 megapixels); the limit is 0.999999 megapixels');
    expect((await preprocessImage(png, { maxPixels: 1_000_000 })).length).toBe(3 * AREA);
  });

  it('the process stays healthy: bad uploads among good ones, all at once', async () => {
    const good = await raw(smooth(600, 400, 3), 600, 400, 3)
      .jpeg()
      .toBuffer();
    const expected = await preprocessImage(good);
    const truncated = good.subarray(0, good.length >> 1);
    const bad = [Buffer.alloc(0), randomBytes(1000), truncated, bomb()];
    const inputs = Array.from({ length: 24 }, (_, i) => (i % 5 === 4 ? good : bad[i % 5]));
    const results = await Promise.allSettled(inputs.map((bytes) => preprocessImage(bytes)));
    results.forEach((r, i) => {
      if (i % 5 === 4) {
        expect(r.status).toBe('fulfilled');
        expect(absDiff((r as PromiseFulfilledResult<Float32Array>).value, expected).max).toBe(0);
      } else {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ImageError);
      }
    });
    expect(absDiff(await preprocessImage(good), expected).max).toBe(0);
  });
});

describe('the event loop keeps turning while a big image is decoded', () => {
  it('timers run while sharp works on a 4000x3000 JPEG on the libuv pool', async () => {
    const big = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: { r: 200, g: 120, b: 40 } } })
      .jpeg()
      .toBuffer();
    const events: string[] = [];
    let done = false;
    const timer = () => {
      if (done) return;
      // sharp's counter of images being processed on the pool right now
      events.push(sharp.counters().process > 0 ? 'timer while sharp works' : 'timer');
      setTimeout(timer, 1);
    };
    setTimeout(timer, 1);
    const out = await preprocessImage(big);
    done = true;
    events.push('preprocessed');
    expect(out.length).toBe(3 * AREA);
    expect(events.at(-1)).toBe('preprocessed');
    expect(events.filter((e) => e === 'timer while sharp works').length).toBeGreaterThanOrEqual(3);
  });
});
