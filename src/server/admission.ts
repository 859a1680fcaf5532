// The bound on /predict's queue. A request is admitted when fewer than MAX_QUEUE admitted requests are still
// waiting for their forward (decoding, waiting for the text's features, or waiting for a batch); beyond that it
// is refused at once with 503 and a Retry-After, rather than joining a queue whose wait grows without bound.
// An admitted request that is still waiting REQUEST_TIMEOUT_MS later is refused too (503), not computed for a
// client that has likely given up. A request leaves the queue when its forward starts.

export interface AdmissionOptions {
  maxQueue: number;
  timeoutMs: number;
}

export interface Ticket {
  /** performance.now() after which the request must not wait any longer. */
  readonly deadline: number;
  /** The request's forward has started: it no longer counts as waiting. */
  started(): void;
  /** The request is over (answered or failed). Idempotent. */
  release(): void;
}

export class Admission {
  #waiting = 0;
  /** Exponentially weighted mean time from admission to forward start, for Retry-After. */
  #meanWaitMs = 0;
  /** Requests refused: the queue was full, or they waited past their deadline. */
  readonly rejected = { full: 0, timeout: 0 };

  constructor(readonly options: AdmissionOptions) {}

  get waiting(): number {
    return this.#waiting;
  }

  get full(): boolean {
    return this.#waiting >= this.options.maxQueue;
  }

  /** A ticket, or undefined (counted as refused) when the queue is full. */
  enter(): Ticket | undefined {
    if (this.full) {
      this.refuse();
      return undefined;
    }
    this.#waiting++;
    const admitted = performance.now();
    let waiting = true;
    const leave = (): void => {
      if (!waiting) return;
      waiting = false;
      this.#waiting--;
    };
    return {
      deadline: admitted + this.options.timeoutMs,
      started: () => {
        if (waiting) this.#meanWaitMs = 0.8 * this.#meanWaitMs + 0.2 * (performance.now() - admitted);
        leave();
      },
      release: leave,
    };
  }

  /** A request was refused because the queue was full (before it was read: see routes/predict.ts). */
  refuse(): void {
    this.rejected.full++;
  }

  /** A request waited past its deadline and was refused. */
  timedOut(): void {
    this.rejected.timeout++;
  }

  /** Seconds a refused client should wait before trying again: about the time the queue takes to drain. */
  retryAfterSeconds(): number {
    return Math.min(60, Math.max(1, Math.ceil(this.#meanWaitMs / 1000)));
  }
}
