// PIL's CMYK to RGB (Convert.c, cmyk2rgb), used by the whole-image decoder's worker (whole-decode-worker.ts).
//   R = (255 - K) - round((255 - K) * C / 255), rounded as PIL rounds; likewise G from M and B from Y;
// no colour profile (sharp would apply one: mean difference 0.15 to 0.5 from PIL's).

/** `cmyk`: `pixels` pixels of `channels` bytes (C, M, Y, K first); the RGB bytes, 3 a pixel. */
export function cmykToRgb(cmyk: Uint8Array, channels: number, pixels: number): Uint8Array {
  const rgb = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const notK = 255 - cmyk[i * channels + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i * channels + c] * notK + 128;
      rgb[i * 3 + c] = notK - (((t >> 8) + t) >> 8);
    }
  }
  return rgb;
}
