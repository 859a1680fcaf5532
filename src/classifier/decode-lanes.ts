// How many images decode at once. Decoding is CPU work on libuv's pool: more decodes at once than cores only
// take the cores from the event loop (and the model), so at most `maxDecodes` run side by side (default: the
// cores). A large image (over 16 megapixels, or 64 MiB to decode: a 6000x6000 CMYK JPEG takes 250 MiB and a
// second; a 1x39,000,000 PNG two seconds of CPU) also needs one of `maxLarge` lanes, so that a burst of them
// can neither exhaust the memory nor hold every decoding slot while ordinary photos wait. A request that waited
// past its deadline for a slot is refused (QueueError, ERR_QUEUE_TIMEOUT).
import { availableParallelism } from 'node:os';

import { QueueError } from './batch-scheduler.js';
import type { DecodeEstimate, DecodeGate } from './preprocess.js';

export const LARGE_IMAGE_PIXELS = 16_000_000;
export const LARGE_DECODE_BYTES = 64 * 1024 * 1024;

export function isLarge(estimate: DecodeEstimate): boolean {
  return estimate.pixels > LARGE_IMAGE_PIXELS || estimate.bytes > LARGE_DECODE_BYTES;
}

/** A counting semaphore whose waiters may give up at a deadline. */
class Slots {
  #used = 0;
  readonly #waiting: { start: () => void }[] = [];

  constructor(readonly size: number) {}

  get stats(): { running: number; waiting: number } {
    return { running: this.#used, waiting: this.#waiting.length };
  }

  acquire(deadline: number | undefined): Promise<void> {
    if (this.#used < this.size) {
      this.#used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        start: () => {
          clearTimeout(timer);
          this.#used++;
          resolve();
        },
      };
      const timer =
        deadline === undefined
          ? undefined
          : setTimeout(
              () => {
                const i = this.#waiting.indexOf(entry);
                if (i >= 0) this.#waiting.splice(i, 1);
                reject(new QueueError('The request waited to be decoded longer than its deadline allows', 'ERR_QUEUE_TIMEOUT'));
              },
              Math.max(0, deadline - performance.now()),
            );
      timer?.unref();
      this.#waiting.push(entry);
    });
  }

  release(): void {
    this.#used--;
    this.#waiting.shift()?.start();
  }
}

export class DecodeLanes {
  readonly #large: Slots;
  readonly #all: Slots;

  constructor(maxLarge: number, maxDecodes = availableParallelism()) {
    for (const [name, value] of [
      ['maxLarge', maxLarge],
      ['maxDecodes', maxDecodes],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`Expected a positive integer for ${name} but received ${String(value)}`);
    }
    this.#large = new Slots(maxLarge);
    this.#all = new Slots(maxDecodes);
  }

  /** Large images decoding now, and waiting for a lane. */
  get stats(): { running: number; waiting: number } {
    return this.#large.stats;
  }

  /** The gate for one request's decode: a decoding slot, and a lane first for a large image. */
  gate(deadline?: number): DecodeGate {
    return async (estimate) => {
      const large = isLarge(estimate);
      if (large) await this.#large.acquire(deadline);
      try {
        await this.#all.acquire(deadline);
      } catch (err) {
        if (large) this.#large.release();
        throw err;
      }
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.#all.release();
        if (large) this.#large.release();
      };
    };
  }
}
