// The error for uploads that are not a usable image, and its messages (the service answers them with 400, and
// its API documentation shows them).

export type ImageErrorCode = 'ERR_IMAGE_DECODE' | 'ERR_IMAGE_TOO_LARGE';

/**
 * The uploaded bytes are not an image this module can use: `code` is ERR_IMAGE_DECODE (empty, not an image,
 * truncated or corrupt, a format that is not accepted) or ERR_IMAGE_TOO_LARGE (more pixels than maxPixels).
 * The message is for the user who sent the file; `details` holds the decoder's own words, for logs.
 */
export class ImageError extends Error {
  override readonly name = 'ImageError';

  constructor(
    message: string,
    readonly code: ImageErrorCode,
    readonly details: string = '',
  ) {
    super(message);
  }
}

/** The image formats accepted (see preprocess.ts for why these). */
export const IMAGE_FORMATS = 'JPEG, PNG, WebP, GIF, TIFF or AVIF';
export const NOT_AN_IMAGE = `The uploaded file is not a decodable image (${IMAGE_FORMATS})`;

export function tooLarge(width: number, height: number, maxPixels: number): ImageError {
  const mp = (n: number) => `${Number((n / 1e6).toPrecision(6))} megapixels`;
  return new ImageError(
    `The uploaded image is too large: ${width}x${height} pixels (${mp(width * height)}); the limit is ${mp(maxPixels)}`,
    'ERR_IMAGE_TOO_LARGE',
  );
}

export function tooCostly(width: number, height: number, bytes: number, limit: number): ImageError {
  const mib = (n: number) => `${Math.ceil(n / (1024 * 1024))} MiB`;
  return new ImageError(
    `The uploaded image would take ${mib(bytes)} of memory to decode (${width}x${height} pixels with alpha, CMYK or ` +
      `16-bit samples are decoded whole); the limit is ${mib(limit)}`,
    'ERR_IMAGE_TOO_LARGE',
  );
}

/** sharp's error, as the user should read it. Only called for failures of the image itself. */
export function decodeError(error: unknown, stage: 'header' | 'pixels'): ImageError {
  const details = error instanceof Error ? error.message : String(error);
  const message = stage === 'header' ? NOT_AN_IMAGE : `The uploaded image is truncated or corrupt and cannot be decoded (${IMAGE_FORMATS} are accepted)`;
  return new ImageError(message, 'ERR_IMAGE_DECODE', details);
}
