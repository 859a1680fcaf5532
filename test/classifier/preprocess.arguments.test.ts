// preprocessImage's constants and torchvision's geometry (Python's rounding of the crop offset, Resize's
// truncation), and its arguments, checked at once with a synchronous throw. No image is decoded here: the
// comparison with torchvision + PIL is in preprocess.torchvision.test.ts, the errors in preprocess.errors.test.ts.
import { describe, expect, it } from 'vitest';

import {
  CROP,
  IMAGENET_MEAN,
  IMAGENET_STD,
  MAX_PIXELS,
  RESIZE,
  centerCropOffset,
  preprocessImage,
  resizedSize,
  roundHalfToEven,
} from '../../src/classifier/preprocess.js';

describe('constants and torchvision geometry', () => {
  it('exports the workshop constants', () => {
    expect([RESIZE, CROP, MAX_PIXELS]).toEqual([256, 224, 40_000_000]);
    expect(IMAGENET_MEAN).toEqual([0.485, 0.456, 0.406]);
    expect(IMAGENET_STD).toEqual([0.229, 0.224, 0.225]);
  });

  it("rounds halves to even, as Python's round()", () => {
    expect([0.5, 1.5, 2.5, 58.5, 59.5, 60.5, 3, 4.4, 4.6].map(roundHalfToEven)).toEqual([0, 2, 2, 58, 60, 60, 3, 4, 5]);
    expect(centerCropOffset(341)).toBe(58); // Math.round would say 59
    expect(centerCropOffset(345)).toBe(60); // and 61 here
    expect(centerCropOffset(343)).toBe(60);
    expect(centerCropOffset(256)).toBe(16);
  });

  it('Resize(256) truncates the longer side: int(256 * long / short)', () => {
    expect(resizedSize(5000, 300)).toEqual({ width: 4266, height: 256 }); // 4266.67
    expect(resizedSize(300, 5000)).toEqual({ width: 256, height: 4266 });
    expect(resizedSize(1000, 750)).toEqual({ width: 341, height: 256 });
    expect(resizedSize(6509, 4339)).toEqual({ width: 384, height: 256 }); // 384.02
    expect(resizedSize(10, 10)).toEqual({ width: 256, height: 256 });
    expect(resizedSize(7, 3)).toEqual({ width: 597, height: 256 });
  });
});

describe('arguments are checked at once (a synchronous throw)', () => {
  const png = Buffer.from('89504e470d0a1a0a', 'hex');
  it.each([
    ['options that are not an object', 5, TypeError, 'Expected an object for the preprocess options but received 5 of type number'],
    [
      'an unknown option',
      { maxpixels: 5 },
      TypeError,
      "Unknown option 'maxpixels' in the preprocess options; expected one of resize, crop, mean, std, maxPixels",
    ],
    ['resize 0', { resize: 0 }, RangeError, 'Expected an integer between 1 and 8192 for resize but received 0 of type number'],
    ["resize '256'", { resize: '256' }, TypeError, "Expected an integer between 1 and 8192 for resize but received '256' of type string"],
    ['crop over resize', { crop: 300 }, RangeError, 'Expected an integer between 1 and resize (256) for crop but received 300 of type number'],
    ['crop 2.5', { resize: 128, crop: 2.5 }, RangeError, 'Expected an integer between 1 and resize (128) for crop but received 2.5 of type number'],
    ['mean of 2', { mean: [0.5, 0.5] }, TypeError, 'Expected an array of 3 finite numbers for mean but received an array of length 2'],
    ['mean with NaN', { mean: [0.5, NaN, 0.5] }, RangeError, 'Expected an array of 3 finite numbers for mean but received [0.5, NaN, 0.5]'],
    ['std with 0', { std: [0.2, 0, 0.2] }, RangeError, 'Expected an array of 3 positive finite numbers for std but received [0.2, 0, 0.2]'],
    ['maxPixels 0', { maxPixels: 0 }, RangeError, `Expected an integer between 1 and ${Number.MAX_SAFE_INTEGER} for maxPixels but received 0 of type number`],
  ])('%s', (_, options, type, message) => {
    expect(() => preprocessImage(png, options as never)).toThrow(type);
    expect(() => preprocessImage(png, options as never)).toThrow(message);
  });

  it.each([
    ['a string', 'image.jpg', "Expected a Buffer or Uint8Array for the image bytes but received 'image.jpg' of type string"],
    ['an ArrayBuffer', new ArrayBuffer(8), 'Expected a Buffer or Uint8Array for the image bytes but received an object of type ArrayBuffer'],
    ['undefined', undefined, 'Expected a Buffer or Uint8Array for the image bytes but received undefined'],
  ])('bytes that are %s', (_, bytes, message) => {
    expect(() => preprocessImage(bytes as never)).toThrow(new TypeError(message));
  });
});
