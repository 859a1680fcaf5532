// The sharp pipelines that must match PIL exactly, in one place: preprocess.ts runs them on the libuv pool for
// ordinary images, whole-decode-worker.ts for the images decoded whole (CMYK, alpha). See preprocess.ts for why
// each setting is what it is.
import sharp, { type Sharp, type SharpOptions } from 'sharp';

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** `region` of an image as 8-bit RGB, its alpha channel dropped (not composited), as PIL's convert('RGB'). */
export function rgbRegion(input: Uint8Array, decode: SharpOptions, region: Region): Sharp {
  return sharp(input, decode).extract(region).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' });
}

/** Resize(256) with PIL's bilinear filter (sharp's 'linear' kernel), then the crop, as 8-bit RGB. */
export function resizeAndCrop(source: Sharp, target: { width: number; height: number }, crop: Region): Sharp {
  return source.resize(target.width, target.height, { fit: 'fill', kernel: 'linear' }).extract(crop).toColourspace('srgb').raw({ depth: 'uchar' });
}
