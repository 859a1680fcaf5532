// A short forward's answer, picked up at once.
//
// A forward's answer reaches JavaScript through the event loop: the inference thread wakes it (libuv's async
// handle, an eventfd), and an event loop with nothing else to do sleeps in epoll_wait until then. Waking a
// sleeping thread costs tens of microseconds on a virtual machine: measured on the 2-core VM, a tiny MLP's
// forward (batch 1, 1 and 2 threads, medians of 1,000) took 0.040-0.045 ms from call to answer with the loop
// asleep and 0.020-0.025 ms with it polling, where Python's own call takes 0.019 ms. For a forward that short
// the wake-up is most of the cost; for one of milliseconds it is noise.
//
// So while a short forward is in flight the loop is kept polling (a chain of setImmediate callbacks: each turn
// of the loop polls for I/O without sleeping, and runs timers and I/O as usual), for at most SHORT_FORWARD_NS.
// A model counts as short once its recent forwards took less than that; its first forward never polls. The
// price is that much CPU time on the JavaScript thread per short forward; a model whose forwards take longer
// (the service's, any image model) never pays it.

/** A model's forwards count as short under this (call to answer, as JavaScript sees it); also the longest spin. */
export const SHORT_FORWARD_NS = 250_000n;

type Clock = () => bigint;
const hrtime: Clock = () => process.hrtime.bigint();

/**
 * Keeps the event loop polling while answers it holds are pending: one chain for all of them, which ends when
 * none is pending or when SHORT_FORWARD_NS have passed since the latest hold (each hold adds that much at most).
 */
export class LoopPoller {
  #inFlight = 0;
  #until = 0n;
  #polling = false;
  readonly #now: Clock;

  constructor(now: Clock = hrtime) {
    this.#now = now;
  }

  get polling(): boolean {
    return this.#polling;
  }

  hold(answer: Promise<unknown>): void {
    const until = this.#now() + SHORT_FORWARD_NS;
    if (until > this.#until) this.#until = until;
    this.#inFlight++;
    const settled = () => {
      this.#inFlight--;
    };
    answer.then(settled, settled); // a branch of its own: the caller's chain still sees a rejection
    if (!this.#polling) {
      this.#polling = true;
      setImmediate(this.#poll);
    }
  }

  readonly #poll = (): void => {
    if (this.#inFlight > 0 && this.#now() < this.#until) setImmediate(this.#poll);
    else this.#polling = false;
  };
}

/** The process's one poller: every model's short forwards share its chain of setImmediate callbacks. */
export const loopPoller = new LoopPoller();

/**
 * A model's recent forward time (call to answer, successful forwards only: a rejection can come at once), and
 * whether its next forward counts as short. A moving average that follows a faster forward at once, so that the
 * first forward (LibTorch's lazy set-up makes it several times slower) does not delay the verdict, and rises
 * slowly, so that one slow forward among short ones does not end it.
 */
export class ForwardTimer {
  #averageNs = Number.POSITIVE_INFINITY;
  readonly #now: Clock;

  constructor(now: Clock = hrtime) {
    this.#now = now;
  }

  get short(): boolean {
    return this.#averageNs < Number(SHORT_FORWARD_NS);
  }

  /** Starts timing a forward: call the function it returns when the forward has succeeded. */
  start(): () => void {
    const start = this.#now();
    return () => {
      const took = Number(this.#now() - start);
      this.#averageNs = took < this.#averageNs ? took : 0.8 * this.#averageNs + 0.2 * took;
    };
  }
}
