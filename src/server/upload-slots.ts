// At most `slots` uploads to /predict are read at once; the others wait, their sockets not read, until one of
// those being read has been read to its end (or its request is over). Why: every chunk of an upload costs the
// event loop its HTTP parsing, busboy's boundary search and a buffer to collect, and a loop iteration handles
// every socket that has data. With 64 clients pushing uploads at once, an iteration took tens of
// milliseconds, and /health waited behind it (p99 32-40 ms with 64 texts of 1 MiB). A bounded number of
// uploads in flight bounds an iteration's work; the rest wait in the kernel's socket buffers, at no cost, in
// turn. A slot is held UPLOAD_TIMEOUT at most (an upload still arriving then gets 408 and frees it), so each
// wait is bounded; one that is still arriving meanwhile gets its own 408 at UPLOAD_TIMEOUT.
// The bound is a trade, hence its default of 64 (MAX_QUEUE's): with 4, /health's p99 under 64 clients of 1 MiB
// texts fell from 38-53 ms to 23 ms, but under 64 clients of large photos it rose from 9-10 ms to 18-21 ms: a
// waiting upload's socket holds megabytes when its turn comes, and they are read in one burst.
import type { RequestHandler } from 'express';

export class UploadSlots {
  readonly #slots: number;
  #reading = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(slots: number) {
    this.#slots = slots;
  }

  /** Uploads being read now. */
  get reading(): number {
    return this.#reading;
  }

  /** Uploads waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Holds the request until a slot is free, then lets the next handler read its body. The stream is paused
   * meanwhile (Node then stops reading the socket once its small buffer is full); the handler that reads it
   * (multer's pipe) resumes it. The slot is freed when the body has been read to its end or the request closes.
   */
  middleware(): RequestHandler {
    return (req, res, next) => {
      let state: 'waiting' | 'reading' | 'done' = 'waiting';
      const start = (): void => {
        state = 'reading';
        this.#reading++;
        next();
      };
      const finish = (): void => {
        if (state === 'done') return;
        if (state === 'reading') {
          this.#reading--;
          this.#waiting.shift()?.();
        } else {
          const at = this.#waiting.indexOf(start);
          if (at >= 0) this.#waiting.splice(at, 1);
        }
        state = 'done';
      };
      req.once('end', finish);
      res.once('close', finish);
      if (this.#reading < this.#slots) return start();
      req.pause();
      this.#waiting.push(start);
    };
  }
}
