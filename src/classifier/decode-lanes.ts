// How many large images decode at once. An ordinary photo decodes in milliseconds and a few megabytes, and as
// many of those run side by side as libuv's pool has threads. A large one (over 16 megapixels, or 64 MiB to
// decode: a 6000x6000 CMYK JPEG takes 250 MiB and a second; a 1x39,000,000 PNG two seconds of CPU) waits for
// one of `maxLarge` lanes, so that a burst of them can neither exhaust the memory nor take every core from the
// ordinary photos. A large image that waited past its deadline is refused (QueueError, ERR_QUEUE_TIMEOUT).
import { QueueError } from './batch-scheduler.js';
import type { DecodeEstimate, DecodeGate } from './preprocess.js';

export const LARGE_IMAGE_PIXELS = 16_000_000;
export const LARGE_DECODE_BYTES = 64 * 1024 * 1024;

export function isLarge(estimate: DecodeEstimate): boolean {
  return estimate.pixels > LARGE_IMAGE_PIXELS || estimate.bytes > LARGE_DECODE_BYTES;
}

export class DecodeLanes {
  #running = 0;
  readonly #waiting: { start: () => void; fail: (err: Error) => void }[] = [];

  constructor(readonly maxLarge: number) {
    if (!Number.isInteger(maxLarge) || maxLarge < 1) throw new RangeError(`Expected a positive integer for maxLarge but received ${String(maxLarge)}`);
  }

  /** Large images decoding now, and waiting for a lane. */
  get stats(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }

  /** The gate for one request's decode: immediate for an ordinary image, a lane for a large one. */
  gate(deadline?: number): DecodeGate {
    return async (estimate) => {
      if (!isLarge(estimate)) return () => {};
      await this.#acquire(deadline);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.#release();
      };
    };
  }

  #acquire(deadline: number | undefined): Promise<void> {
    if (this.#running < this.maxLarge) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        start: () => {
          clearTimeout(timer);
          this.#running++;
          resolve();
        },
        fail: reject,
      };
      const timer =
        deadline === undefined
          ? undefined
          : setTimeout(() => {
              const i = this.#waiting.indexOf(entry);
              if (i >= 0) this.#waiting.splice(i, 1);
              reject(new QueueError('The request waited for a decoding lane longer than its deadline allows', 'ERR_QUEUE_TIMEOUT'));
            }, Math.max(0, deadline - performance.now()));
      timer?.unref();
      this.#waiting.push(entry);
    });
  }

  #release(): void {
    this.#running--;
    this.#waiting.shift()?.start();
  }
}
