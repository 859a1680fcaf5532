// torchvision's and PIL's arithmetic for the workshop's preprocessing, reproduced exactly where sharp's own
// would differ (preprocess.ts says where and by how much): Resize's output size, CenterCrop's offset, PIL's
// bilinear resampling in fixed point (Resample.c, for images enlarged to 256), and ToTensor + Normalize in
// torch's float32 steps. Plain arithmetic on arrays: no sharp, no I/O.

/** torchvision's Resize(256): the shorter side of the image after resizing. */
export const RESIZE = 256;
/** torchvision's CenterCrop(224): the side of the square the model sees. */
export const CROP = 224;
/** ImageNet's channel means (R, G, B), as the workshop normalised. */
export const IMAGENET_MEAN: readonly [number, number, number] = Object.freeze([0.485, 0.456, 0.406]);
/** ImageNet's channel standard deviations (R, G, B). */
export const IMAGENET_STD: readonly [number, number, number] = Object.freeze([0.229, 0.224, 0.225]);

/** Python's round() for the halves (size - crop) / 2 can produce: half to even, as torchvision rounds. */
export function roundHalfToEven(value: number): number {
  const nearest = Math.round(value);
  return Math.abs(value % 1) === 0.5 && nearest % 2 !== 0 ? nearest - 1 : nearest;
}

/**
 * torchvision's Resize(size) for an image of width x height: the shorter side becomes size, the longer
 * int(size * long / short).
 */
export function resizedSize(width: number, height: number, size = RESIZE): { width: number; height: number } {
  return width <= height ? { width: size, height: Math.trunc((size * height) / width) } : { width: Math.trunc((size * width) / height), height: size };
}

/** torchvision's CenterCrop offset along one side: int(round((size - crop) / 2.0)). */
export function centerCropOffset(size: number, crop = CROP): number {
  return roundHalfToEven((size - crop) / 2);
}

/** PIL's fixed-point precision for 8-bit resampling (Resample.c: 32 - 8 - 2 bits). */
const PRECISION_BITS = 22;

export interface Coefficients {
  /** The first source index used by any of the outputs, and one past the last. */
  first: number;
  last: number;
  /** For each output: its first source index, relative to `first`, and how many it uses. */
  start: Int32Array;
  count: Int32Array;
  /** For each output, `size` fixed-point weights (the first `count` used). */
  weights: Int32Array;
  size: number;
}

/**
 * PIL's precompute_coeffs and normalize_coeffs_8bpc for its bilinear filter (support 1, widened by the
 * reduction factor), for the outputs [from, from + count) of a resize from inSize to outSize.
 */
export function pilBilinearCoefficients(inSize: number, outSize: number, from: number, count: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const mins = new Int32Array(count);
  const counts = new Int32Array(count);
  const weights = new Int32Array(count * size);
  const k = new Float64Array(size);
  for (let o = 0; o < count; o++) {
    const center = (from + o + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < n; x++) {
      const d = Math.abs((x + xmin - center + 0.5) / filterScale);
      k[x] = d < 1 ? 1 - d : 0;
      total += k[x];
    }
    for (let x = 0; x < n; x++) {
      const w = total !== 0 ? k[x] / total : k[x];
      weights[o * size + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    mins[o] = xmin;
    counts[o] = n;
  }
  const first = mins[0];
  const last = mins[count - 1] + counts[count - 1];
  for (let o = 0; o < count; o++) mins[o] -= first;
  return { first, last, start: mins, count: counts, weights, size };
}

function clip8(sum: number): number {
  if (sum >= 1 << (PRECISION_BITS + 8)) return 255;
  if (sum <= 0) return 0;
  return sum >> PRECISION_BITS;
}

/**
 * PIL's two-pass resampling (horizontal first, rounded to 8 bits, then vertical) of an RGB region whose
 * origin is (horizontal.first, vertical.first) in the source, for a crop x crop block of the output.
 */
export function pilResample(rgb: Uint8Array, regionWidth: number, horizontal: Coefficients, vertical: Coefficients, crop: number): Uint8Array {
  const rows = vertical.last - vertical.first;
  const half = 1 << (PRECISION_BITS - 1);
  const temp = new Uint8Array(rows * crop * 3);
  for (let y = 0; y < rows; y++) {
    for (let o = 0; o < crop; o++) {
      const n = horizontal.count[o];
      const w = o * horizontal.size;
      const base = (y * regionWidth + horizontal.start[o]) * 3;
      for (let c = 0; c < 3; c++) {
        let sum = half;
        for (let x = 0; x < n; x++) sum += rgb[base + x * 3 + c] * horizontal.weights[w + x];
        temp[(y * crop + o) * 3 + c] = clip8(sum);
      }
    }
  }
  const out = new Uint8Array(crop * crop * 3);
  for (let o = 0; o < crop; o++) {
    const n = vertical.count[o];
    const w = o * vertical.size;
    const start = vertical.start[o];
    for (let x = 0; x < crop; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = half;
        for (let y = 0; y < n; y++) sum += temp[((start + y) * crop + x) * 3 + c] * vertical.weights[w + y];
        out[(o * crop + x) * 3 + c] = clip8(sum);
      }
    }
  }
  return out;
}

/** HWC uint8 RGB to CHW float32, (value / 255 - mean) / std, as ToTensor and Normalize compute it. */
export function normalise(
  pixels: Uint8Array,
  area: number,
  { mean, std }: { mean: readonly number[]; std: readonly number[] },
  into?: Float32Array,
): Float32Array {
  const out = into ?? new Float32Array(3 * area);
  for (let c = 0; c < 3; c++) {
    // A table per channel, with torch's float32 arithmetic step by step (ToTensor's x / 255, then
    // Normalize's (x - mean) / std with mean and std as float32): the same pixels give the same floats.
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(v / 255) - m) / s;
    const plane = c * area;
    for (let i = 0; i < area; i++) out[plane + i] = table[pixels[i * 3 + c]];
  }
  return out;
}
