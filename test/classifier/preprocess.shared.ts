// The images made with sharp that the preprocess tests (preprocess.torchvision.test.ts and preprocess.errors.test.ts)
// share: deterministic noise, smooth photo-like content, and raw pixels as a sharp pipeline.
import sharp, { type Sharp } from 'sharp';

/** Deterministic bytes in [0, 255] (Park-Miller). */
export function noise(width: number, height: number, channels: number, seed = 1): Buffer {
  const out = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 16807) % 2147483647;
    out[i] = s & 255;
  }
  return out;
}

/**
 * Smooth, photo-like content (sines of different periods per channel) with a little noise; the 4th channel,
 * if any, is an alpha ramp with zeros.
 */
export function smooth(width: number, height: number, channels: number): Buffer {
  const grain = noise(width, height, 1, 7);
  const out = Buffer.alloc(width * height * channels);
  for (let c = 0; c < Math.min(channels, 3); c++) {
    // sin(x / a + y / b) = sin(x / a) cos(y / b) + cos(x / a) sin(y / b), from tables
    const table = (n: number, period: number, f: (v: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i / period));
    const [sx, cx] = [table(width, 9 + 4 * c, Math.sin), table(width, 9 + 4 * c, Math.cos)];
    const [sy, cy] = [table(height, 13 - 3 * c, Math.sin), table(height, 13 - 3 * c, Math.cos)];
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const wave = sx[x] * cy[y] + cx[x] * sy[y];
        out[i * channels + c] = Math.min(255, Math.round(120 + 100 * wave + (grain[i] >> 3)));
      }
    }
  }
  if (channels === 4) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) out[(y * width + x) * 4 + 3] = Math.max(0, ((x * 7 + y * 3) % 300) - 44);
    }
  }
  return out;
}

export function raw(data: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4): Sharp {
  return sharp(data, { raw: { width, height, channels } });
}
