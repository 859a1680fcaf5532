// Dynamic batching, as Triton and TorchServe do it: requests that arrive while a forward runs wait in a queue,
// and the next forward takes up to `maxBatch` of them at once. A batch of 8 costs well under 8 forwards of one
// (the weights are read once, the matrix products are larger), so a busy service answers more requests a
// second; an idle one answers each request at once (or after `maxDelayMs`, when it is set to wait for company).
//
// One scheduler runs one forward at a time, for all its queues (a classifier's text encoder and head share the
// same cores: two forwards at once would only fight over them). When the model is free, the queue whose oldest
// request has waited longest goes next.
//
// Every request may carry a deadline: one that is still waiting when its deadline passes is rejected with
// ERR_QUEUE_TIMEOUT (the service answers 503) instead of being computed for a client that has given up.

/** Why a request was not computed. */
export class QueueError extends Error {
  override readonly name = 'QueueError';

  constructor(
    message: string,
    readonly code: 'ERR_QUEUE_TIMEOUT',
  ) {
    super(message);
  }
}

export interface BatchSchedulerOptions {
  /** The most requests one forward takes. */
  maxBatch: number;
  /**
   * How long a request that finds the model idle waits for others to join its batch, in milliseconds. 0: it
   * starts at once, and batches form only from the requests that arrive while a forward runs.
   */
  maxDelayMs: number;
}

export interface SubmitOptions {
  /** performance.now() after which the request, if still waiting, is rejected with ERR_QUEUE_TIMEOUT. */
  deadline?: number;
  /** Called when the forward that computes this request starts (its wait is over). */
  onStart?: () => void;
}

/** What one forward of a queue did, for metrics. */
export interface BatchRecord {
  queue: string;
  size: number;
  /** How long each request of the batch waited in the queue, in milliseconds. */
  waitedMs: number[];
  forwardMs: number;
  failed: boolean;
}

interface Pending<I, O> {
  item: I;
  enqueued: number;
  options: SubmitOptions;
  resolve: (output: O) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Computes a batch: one output per item, in the items' order. */
export type RunBatch<I, O> = (items: I[]) => Promise<O[]>;

export class BatchQueue<I, O> {
  readonly #pending: Pending<I, O>[] = [];

  constructor(
    readonly name: string,
    readonly run: RunBatch<I, O>,
    private readonly scheduler: BatchScheduler,
  ) {}

  /** Resolves to the item's output once a forward has computed it. */
  submit(item: I, options: SubmitOptions = {}): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const entry: Pending<I, O> = { item, enqueued: performance.now(), options, resolve, reject, timer: undefined };
      if (options.deadline !== undefined) {
        const wait = options.deadline - entry.enqueued;
        if (wait <= 0) {
          reject(timedOut(0));
          return;
        }
        entry.timer = setTimeout(() => this.#expire(entry), wait);
        entry.timer.unref();
      }
      this.#pending.push(entry);
      this.scheduler.wake();
    });
  }

  /** Requests waiting in this queue. */
  get waiting(): number {
    return this.#pending.length;
  }

  /** When the oldest waiting request arrived (performance.now()), or Infinity. */
  get oldest(): number {
    return this.#pending[0]?.enqueued ?? Infinity;
  }

  /**
   * Removes up to `max` requests (the oldest first), their timers stopped. Requests past their deadline (their
   * timer not run yet) are rejected instead.
   */
  take(max: number): Pending<I, O>[] {
    const now = performance.now();
    const batch: Pending<I, O>[] = [];
    while (batch.length < max && this.#pending.length > 0) {
      const entry = this.#pending.shift()!;
      clearTimeout(entry.timer);
      if (entry.options.deadline !== undefined && entry.options.deadline <= now) entry.reject(timedOut(now - entry.enqueued));
      else batch.push(entry);
    }
    return batch;
  }

  #expire(entry: Pending<I, O>): void {
    const index = this.#pending.indexOf(entry);
    if (index < 0) return; // already taken into a forward
    this.#pending.splice(index, 1);
    entry.reject(timedOut(performance.now() - entry.enqueued));
  }
}

function timedOut(waitedMs: number): QueueError {
  return new QueueError(`The request waited ${Math.round(waitedMs)} ms for the model, longer than its deadline allows`, 'ERR_QUEUE_TIMEOUT');
}

export class BatchScheduler {
  readonly options: Readonly<BatchSchedulerOptions>;
  readonly #queues: BatchQueue<unknown, unknown>[] = [];
  readonly #onBatch: ((record: BatchRecord) => void) | undefined;
  #running = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: BatchSchedulerOptions, onBatch?: (record: BatchRecord) => void) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) {
      throw new RangeError(`Expected a positive integer for maxBatch but received ${String(options.maxBatch)}`);
    }
    if (!Number.isFinite(options.maxDelayMs) || options.maxDelayMs < 0) {
      throw new RangeError(`Expected a number of at least 0 for maxDelayMs but received ${String(options.maxDelayMs)}`);
    }
    this.options = Object.freeze({ ...options });
    this.#onBatch = onBatch;
  }

  /** A queue whose batches `run` computes. */
  queue<I, O>(name: string, run: RunBatch<I, O>): BatchQueue<I, O> {
    const queue = new BatchQueue<I, O>(name, run, this);
    this.#queues.push(queue as BatchQueue<unknown, unknown>);
    return queue;
  }

  /** Requests waiting in all queues (not those in the running forward). */
  get waiting(): number {
    return this.#queues.reduce((n, q) => n + q.waiting, 0);
  }

  /** Called by a queue when a request arrives: starts a forward if the model is free. */
  wake(): void {
    if (this.#running) return;
    const queue = this.#next();
    if (!queue) return;
    const { maxBatch, maxDelayMs } = this.options;
    const age = performance.now() - queue.oldest;
    if (maxDelayMs > 0 && queue.waiting < maxBatch && age < maxDelayMs) {
      // Wait for company, at most until the oldest request has waited maxDelayMs.
      if (!this.#timer) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#dispatch();
        }, maxDelayMs - age);
      }
      return;
    }
    this.#dispatch();
  }

  #next(): BatchQueue<unknown, unknown> | undefined {
    let best: BatchQueue<unknown, unknown> | undefined;
    for (const queue of this.#queues) if (queue.waiting > 0 && (!best || queue.oldest < best.oldest)) best = queue;
    return best;
  }

  #dispatch(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running) return;
    const queue = this.#next();
    if (!queue) return;
    const batch = queue.take(this.options.maxBatch);
    if (batch.length === 0) {
      this.wake(); // all expired: look again
      return;
    }
    this.#running = true;
    const started = performance.now();
    const waitedMs = batch.map((entry) => started - entry.enqueued);
    for (const entry of batch) {
      try {
        entry.options.onStart?.();
      } catch {
        // a caller's bookkeeping must not stop the forward of the others
      }
    }
    let failed = false;
    // The forward is called on a later turn: a request's own submit() never runs it synchronously.
    Promise.resolve()
      .then(() => queue.run(batch.map((entry) => entry.item)))
      .then((outputs) => {
        if (!Array.isArray(outputs) || outputs.length !== batch.length) {
          throw new Error(`The ${queue.name} forward gave ${Array.isArray(outputs) ? outputs.length : 'no'} outputs for ${batch.length} inputs`);
        }
        for (const [i, entry] of batch.entries()) entry.resolve(outputs[i]);
      })
      .catch((err: unknown) => {
        failed = true;
        for (const entry of batch) entry.reject(err);
      })
      .finally(() => {
        this.#running = false;
        try {
          this.#onBatch?.({ queue: queue.name, size: batch.length, waitedMs, forwardMs: performance.now() - started, failed });
        } catch {
          // metrics must not stop the queue
        }
        this.wake();
      });
  }
}
