// The `slow` fixture model runs `n` matmuls of its input (n is an int64 input): these helpers pick an `n`
// that makes one forward last about as long as a test needs on this machine. Tests that use it assert the
// order of events, never durations: the calibration only makes sure there is time for events to happen.
import { Tensor, type TorchModel } from '../../src/index.js';

/**
 * A 128x128 input whose repeated products stay in tanh's active range (values neither vanish into slow
 * denormals nor saturate), deterministic.
 */
export function slowInput(size = 128): Tensor {
  let seed = 1;
  const next = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647 - 0.5;
  };
  return Tensor.float32(
    Float32Array.from({ length: size * size }, () => (next() * 3.5) / Math.sqrt(size)),
    [size, size],
  );
}

export function iterations(n: number): Tensor {
  return Tensor.int64([n]);
}

/** The iteration count for a forward of about `targetMs` (measured on two warmed-up runs of 50). */
export async function calibrateSlow(model: TorchModel, targetMs: number): Promise<number> {
  const x = slowInput();
  const probe = 50;
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    await model.forward([x, iterations(probe)]);
    best = Math.min(best, performance.now() - start);
  }
  return Math.min(200_000, Math.max(probe, Math.ceil((probe * targetMs) / Math.max(best, 0.01))));
}
