// The workshop's image preprocessing in TypeScript, on sharp (libvips), as close to its torchvision pipeline
// as can be had without doing the heavy work on the event loop:
//
//   transforms.Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(IMAGENET_MEAN, IMAGENET_STD)])
//   applied to Image.open(file).convert('RGB')
//
// - Decoding (and, for the usual image larger than 256 pixels, resizing and cropping) runs in sharp, on the
//   libuv pool; for an image decoded whole (CMYK, alpha), from a worker thread that also converts it (see
//   below). The event loop only normalises the 224x224 crop (150,528 values, well under a millisecond), and,
//   for the rare small image, enlarges it (see below).
// - Resize(256): the shorter side becomes 256 and the longer int(256 * long / short) (truncated, as
//   torchvision computes it; sharp's own sizing rounds), with PIL's bilinear filter, which is antialiased
//   (a triangle widened by the reduction factor).
//   - Reducing (shorter side over 256): sharp's 'linear' kernel, the same filter. Measured against PIL on 80
//     photos (test/classifier/preprocess.torchvision.test.ts prints it), mean |difference| of the normalised values:
//     linear 0.0035, mitchell 0.009, cubic 0.022, lanczos2 0.023, lanczos3 (sharp's default) 0.032. Two
//     settings matter as much as the kernel: sharp's JPEG shrink-on-load is off (it decodes large JPEGs at
//     1/2 to 1/8 scale in the DCT, a box filter PIL never applies: 0.0046 and maximum 1.13 with it, 0.0035
//     and 0.14 without), by an extract of the whole image before the resize; and the alpha channel is
//     dropped before resizing (see below). What remains: libvips first shrinks by an integer box filter when
//     the reduction is more than twice the kernel's (its "reducing gap", which sharp does not expose), and
//     rounds in another order: about 0.003 on 512-pixel photos, at most 0.014 on the 4-28 megapixel samples.
//   - Enlarging (shorter side under 256): libvips enlarges with an interpolator whose sampling grid is half
//     an output pixel off PIL's (mean difference 0.14), so sharp only decodes the source pixels the crop
//     needs and PIL's own resampling (Resample.c's fixed-point arithmetic, torchvision-math.ts) runs on them:
//     identical to PIL.
// - CenterCrop(224) puts the crop at int(round((size - 224) / 2.0)): Python's round, half to even
//   (round(58.5) == 58, where Math.round gives 59).
// - No EXIF rotation, like the workshop: PIL's Image.open does not apply the Orientation tag (that takes
//   ImageOps.exif_transpose), so a photo whose camera stored it sideways reaches the model sideways, here as
//   there. sharp only rotates when asked (autoOrient, rotate()), and this module never asks.
// - convert('RGB') as PIL does it: embedded ICC profiles ignored; greyscale replicated into three channels;
//   palettes expanded; alpha dropped, not composited (the colours under transparent pixels are kept; sharp
//   would premultiply by alpha while resizing, so images with alpha are decoded to RGB first); CMYK by PIL's
//   formula, R = (255 - K)(255 - C) / 255, without a colour profile (sharp would use a CMYK profile: mean
//   difference 0.15 to 0.5). Images decoded whole (CMYK, alpha) are decoded, converted and resized in a worker
//   thread (whole-decode.ts), off the event loop. One deliberate
//   difference: a 16-bit greyscale PNG is scaled to 8 bits, where PIL 9 opens it in mode I and
//   convert('RGB') clips every value over 255 to white (a PIL bug, not reproduced). 16-bit RGB PNGs: PIL
//   keeps the high byte, sharp rounds; within one level.
//
// Concurrency: sharp runs each image on a libuv pool thread (UV_THREADPOOL_SIZE, default 4, shared with fs,
// dns and the addon's model loads) and gives libvips sharp.concurrency() threads per image: 1 by default on
// glibc Linux without jemalloc (sharp's choice, against memory fragmentation), else the number of cores.
// For 224-pixel crops of photos that is the right trade: throughput comes from several images at once, not
// from threads within one, so this module leaves both settings alone (a service that wants more images in
// parallel raises UV_THREADPOOL_SIZE before its first use of the pool).
import sharp, { type Metadata, type OutputInfo, type SharpOptions } from 'sharp';

import { checkInteger, checkKeys, invalid, isObject } from '../torch/validate.js';
import { type Region, resizeAndCrop, rgbRegion } from './sharp-steps.js';
import { decodeWhole, WholeDecoderError } from './whole-decode.js';
import { decodeError, ImageError, NOT_AN_IMAGE, tooCostly, tooLarge } from './image-error.js';
import {
  CROP,
  centerCropOffset,
  IMAGENET_MEAN,
  IMAGENET_STD,
  normalise,
  pilBilinearCoefficients,
  pilResample,
  RESIZE,
  resizedSize,
} from './torchvision-math.js';

export { type ImageErrorCode, ImageError } from './image-error.js';
export { CROP, centerCropOffset, IMAGENET_MEAN, IMAGENET_STD, RESIZE, resizedSize, roundHalfToEven } from './torchvision-math.js';

/** Images with more pixels are refused before they are decoded (decompression bombs). */
export const MAX_PIXELS = 40_000_000;
/** Images that would take more memory to decode are refused before they are decoded. */
export const MAX_DECODE_BYTES = 256 * 1024 * 1024;

export interface PreprocessOptions {
  /** The shorter side after resizing. Default 256. */
  resize: number;
  /** The side of the centred square crop, at most `resize`. Default 224. */
  crop: number;
  /** Per-channel mean (R, G, B) subtracted from values scaled to [0, 1]. Default ImageNet's. */
  mean: readonly [number, number, number];
  /** Per-channel standard deviation (R, G, B) the values are divided by. Default ImageNet's. */
  std: readonly [number, number, number];
  /** The largest width x height accepted, read from the image's header before decoding. Default 40 M. */
  maxPixels: number;
  /**
   * The most memory decoding may take, estimated from the header (see decodeEstimate): an RGB photo streams
   * through libvips in strips, but one with alpha, or CMYK, is decoded whole first. Default 256 MiB.
   */
  maxDecodeBytes: number;
}

export const DEFAULT_PREPROCESS_OPTIONS: Readonly<PreprocessOptions> = Object.freeze({
  resize: RESIZE,
  crop: CROP,
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  maxPixels: MAX_PIXELS,
  maxDecodeBytes: MAX_DECODE_BYTES,
});

const OPTION_KEYS = ['resize', 'crop', 'mean', 'std', 'maxPixels', 'maxDecodeBytes'] as const;

/**
 * The formats accepted, as sharp's metadata names them. The photo formats PIL read for the workshop, plus
 * AVIF; not SVG (rendered by librsvg: a vector renderer is attack surface an upload does not need), nor
 * HEIC, JPEG 2000, JPEG XL, PDF or libvips' own format.
 */
const ACCEPTED = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff']);

function checkTriple(value: unknown, name: string, positive: boolean): readonly [number, number, number] {
  const expected = positive ? 'an array of 3 positive finite numbers' : 'an array of 3 finite numbers';
  if (!Array.isArray(value) || value.length !== 3 || value.some((v) => typeof v !== 'number')) {
    invalid(expected, name, value);
  }
  if (value.some((v: number) => !Number.isFinite(v) || (positive && v <= 0))) {
    throw new RangeError(`Expected ${expected} for ${name} but received [${value.join(', ')}]`);
  }
  return [value[0], value[1], value[2]];
}

function resolveOptions(options: Partial<PreprocessOptions> | undefined): PreprocessOptions {
  if (options === undefined) return DEFAULT_PREPROCESS_OPTIONS;
  if (!isObject(options as unknown)) invalid('an object', 'the preprocess options', options);
  checkKeys(options as Record<string, unknown>, OPTION_KEYS, 'the preprocess options');
  const resize = checkInteger(options.resize ?? RESIZE, 'resize', 1, 8192);
  const crop = options.crop ?? CROP;
  if (typeof crop !== 'number') invalid(`an integer between 1 and resize (${resize})`, 'crop', crop);
  if (!Number.isInteger(crop) || crop < 1 || crop > resize) {
    invalid(`an integer between 1 and resize (${resize})`, 'crop', crop, 'range');
  }
  return {
    resize,
    crop,
    mean: options.mean === undefined ? IMAGENET_MEAN : checkTriple(options.mean, 'mean', false),
    std: options.std === undefined ? IMAGENET_STD : checkTriple(options.std, 'std', true),
    maxPixels: checkInteger(options.maxPixels ?? MAX_PIXELS, 'maxPixels', 1),
    maxDecodeBytes: checkInteger(options.maxDecodeBytes ?? MAX_DECODE_BYTES, 'maxDecodeBytes', 1),
  };
}

/**
 * The workshop's model input for one image: float32, [3, crop, crop] in CHW order (NCHW without the batch
 * dimension; `Tensor.float32(pixels, [1, 3, crop, crop])` adds it), R, G, B planes, normalised.
 *
 * Throws TypeError or RangeError at once for wrong arguments; rejects with an ImageError for bytes that are
 * not a usable image (empty, not an image, truncated, over maxPixels). The bytes are read while the promise
 * is pending (on the libuv pool, without a copy): do not change them before it settles.
 *
 * `into`, when given, receives the values (3 x crop x crop of them) instead of a new array: a service that
 * reuses its arrays spares the garbage collector hundreds of kilobytes a request. `gate`, when given, is
 * called with the decode's estimated cost once the header is read, and the pixels are decoded when the promise
 * it returns resolves (to the function that ends the decode): a service bounds how many large images decode at
 * once with it. A gate that rejects rejects the call with its error.
 */
export function preprocessImage(
  bytes: Buffer | Uint8Array,
  options?: Partial<PreprocessOptions>,
  { into, gate }: { into?: Float32Array; gate?: DecodeGate } = {},
): Promise<Float32Array> {
  if (!(bytes instanceof Uint8Array)) invalid('a Buffer or Uint8Array', 'the image bytes', bytes);
  const resolved = resolveOptions(options);
  if (into !== undefined && (!(into instanceof Float32Array) || into.length !== 3 * resolved.crop * resolved.crop)) {
    invalid(`a Float32Array of ${3 * resolved.crop * resolved.crop} values (3 x crop x crop)`, 'into', into);
  }
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return run(input, resolved, into, gate);
}

/** What decoding an image will cost, known from its header. */
export interface DecodeEstimate {
  width: number;
  height: number;
  /** The pixels the decoder reads: width x height (all of them, whatever the crop). */
  pixels: number;
  /** The memory the decode takes at most, in bytes. */
  bytes: number;
}

/** Waits until `estimate` may be decoded; resolves to the function that says the decode is over. */
export type DecodeGate = (estimate: DecodeEstimate) => Promise<() => void>;

/**
 * The memory a decode takes: an image with alpha, or in CMYK, is decoded whole into raw bytes first (PIL's
 * convert('RGB') semantics: see the module's comment), then converted; anything else streams through libvips in
 * strips, whatever its size. Samples of 16 bits take two bytes.
 */
export function decodeEstimate(meta: Pick<Metadata, 'width' | 'height' | 'channels' | 'depth' | 'space' | 'hasAlpha'>): DecodeEstimate {
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  const pixels = width * height;
  const sample = meta.depth === 'ushort' ? 2 : 1;
  const channels = meta.channels ?? 3;
  const whole = meta.space === 'cmyk' || meta.hasAlpha === true;
  // whole: the decoded image, then its RGB copy; streamed: a few strips of 16 rows in and out.
  const bytes = whole ? pixels * (channels * sample + 3) : width * 16 * 4 * channels * sample + 3 * 256 * 256 * 4;
  return { width, height, pixels, bytes };
}

async function run(input: Buffer, options: PreprocessOptions, into: Float32Array | undefined, gate: DecodeGate | undefined): Promise<Float32Array> {
  const { resize, crop, maxPixels } = options;
  if (input.length === 0) throw new ImageError('The uploaded file is empty', 'ERR_IMAGE_DECODE');
  // failOn 'error': refuse truncated or corrupt pixel data (PIL raises on those too), but not mere warnings
  // (sharp's default, 'warning', also refuses photos with harmless oddities that PIL decodes).
  const decode: SharpOptions = { failOn: 'error', limitInputPixels: maxPixels, ignoreIcc: true, autoOrient: false };

  // The header first (no pixels decoded): the format, the size (for torchvision's rounding, which sharp's
  // own does not follow) and the pixel limit, checked before anything large is allocated.
  let meta: Metadata;
  try {
    meta = await sharp(input, { ...decode, limitInputPixels: false }).metadata();
  } catch (error) {
    throw decodeError(error, 'header');
  }
  const { width, height } = meta;
  const accepted = ACCEPTED.has(meta.format) || (meta.format === 'heif' && meta.compression === 'av1');
  if (!accepted || !width || !height) throw new ImageError(NOT_AN_IMAGE, 'ERR_IMAGE_DECODE', `format ${meta.format}`);
  if (width * height > maxPixels) throw tooLarge(width, height, maxPixels);
  const estimate = decodeEstimate(meta);
  if (estimate.bytes > options.maxDecodeBytes) throw tooCostly(width, height, estimate.bytes, options.maxDecodeBytes);

  const image: Source = { input, decode, width, height, cmyk: meta.space === 'cmyk', alpha: meta.hasAlpha === true };
  const target = resizedSize(width, height, resize);
  const left = centerCropOffset(target.width, crop);
  const top = centerCropOffset(target.height, crop);
  let pixels: Uint8Array;
  const done = gate ? await gate(estimate) : undefined;
  try {
    pixels = Math.min(width, height) < resize ? await upscaleCrop(image, target, left, top, crop) : await downscaleCrop(image, target, left, top, crop);
  } catch (error) {
    if (error instanceof UnexpectedOutput || error instanceof WholeDecoderError) throw error;
    if (error instanceof Error && /pixel limit/i.test(error.message)) throw tooLarge(width, height, maxPixels);
    throw decodeError(error, 'pixels');
  } finally {
    done?.();
  }
  return normalise(pixels, crop * crop, options, into);
}

interface Source {
  input: Buffer;
  decode: SharpOptions;
  width: number;
  height: number;
  cmyk: boolean;
  alpha: boolean;
}

/**
 * Resize(256) that reduces (the usual case), then the crop: all in sharp, on the libuv pool; for an image
 * decoded whole (alpha, CMYK), in the whole-image decoder's worker thread (whole-decode.ts).
 */
async function downscaleCrop(image: Source, target: { width: number; height: number }, left: number, top: number, crop: number): Promise<Uint8Array> {
  const whole = { left: 0, top: 0, width: image.width, height: image.height };
  const cropRegion = { left, top, width: crop, height: crop };
  if (image.alpha || image.cmyk) {
    // As PIL's convert('RGB'), before resizing: the alpha channel dropped (sharp would otherwise premultiply
    // by it while resizing, which changes the colours of translucent pixels), CMYK by PIL's formula.
    const data = await decodeWhole(image.input, image.decode, { cmyk: image.cmyk, region: whole, resize: { ...target, crop: cropRegion } });
    checkLength(data, crop, crop);
    return data;
  }
  // An extract of the whole image before the resize: it stops sharp from shrinking JPEGs on load.
  const { data, info } = await resizeAndCrop(sharp(image.input, image.decode).extract(whole), target, cropRegion).toBuffer({ resolveWithObject: true });
  checkRaw(data, info, crop, crop);
  return data;
}

/**
 * Resize(256) that enlarges (an image whose shorter side is under 256), then the crop. libvips enlarges with
 * an interpolator whose sampling grid is half an output pixel off PIL's (mean difference 0.14 on normalised
 * values), so here sharp only decodes the few source pixels the crop needs (at most about 226x226, whatever
 * the image's size) and PIL's bilinear resampling runs in TypeScript: the same integer arithmetic, the same
 * pixels. About a million multiply-adds, a millisecond on the event loop.
 */
async function upscaleCrop(image: Source, target: { width: number; height: number }, left: number, top: number, crop: number): Promise<Uint8Array> {
  const horizontal = pilBilinearCoefficients(image.width, target.width, left, crop);
  const vertical = pilBilinearCoefficients(image.height, target.height, top, crop);
  const region = {
    left: horizontal.first,
    top: vertical.first,
    width: horizontal.last - horizontal.first,
    height: vertical.last - vertical.first,
  };
  const rgb = await decodeRgb(image, region);
  return pilResample(rgb, region.width, horizontal, vertical, crop);
}

/** A region of the image as 8-bit RGB, HWC, converted as PIL's convert('RGB') does. */
async function decodeRgb(image: Source, region: Region): Promise<Uint8Array> {
  if (image.cmyk) {
    // PIL's formula, in a worker thread: for a large photo, seconds of arithmetic the event loop must not do.
    const rgb = await decodeWhole(image.input, image.decode, { cmyk: true, region });
    checkLength(rgb, region.width, region.height);
    return rgb;
  }
  const { data, info } = await rgbRegion(image.input, image.decode, region).toBuffer({ resolveWithObject: true });
  checkRaw(data, info, region.width, region.height);
  return data;
}

/** Asserts what the whole-image decoder returned: width x height RGB pixels. */
function checkLength(rgb: Uint8Array, width: number, height: number): void {
  if (rgb.length !== width * height * 3) {
    throw new UnexpectedOutput(`preprocessImage: the whole-image decoder returned ${rgb.length} bytes for ${width}x${height} RGB pixels`);
  }
}

/** A bug of this module (or a sharp that changed), not a fault of the image: never an ImageError. */
class UnexpectedOutput extends Error {
  override readonly name = 'UnexpectedOutput';
}

/** Asserts what sharp returned: width x height pixels of `channels` bytes (at least, for CMYK with alpha). */
function checkRaw(data: Buffer, info: OutputInfo, width: number, height: number, channels = 3): void {
  const ok =
    info.width === width &&
    info.height === height &&
    (channels === 3 ? info.channels === 3 : info.channels >= channels) &&
    data.length === width * height * info.channels;
  if (!ok) {
    throw new UnexpectedOutput(
      `preprocessImage: sharp returned ${info.width}x${info.height}x${info.channels} (${data.length} bytes) ` +
        `where ${width}x${height}x${channels} was expected`,
    );
  }
}
