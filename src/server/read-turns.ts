// Request bodies read in turns. Node reads every socket that has data in the same turn of the event loop, and
// each chunk of a body (64 KiB) goes through the HTTP parser, multer and busboy before the turn can end: 64
// uploads of 1 MiB at once kept each turn busy for ~40 ms (bench:texts), and a /health that arrived meanwhile
// waited that long. Here the bodies share a budget of bytes a turn. A chunk cannot be taken back once read, so a
// body whose chunk spends the budget hands that chunk on and is then paused (Node buffers one more read at most,
// then stops reading its socket; what its client sends waits in the kernel's buffers) until a later turn. A
// turn thus hands on its budget, plus a chunk for each body it resumed and for each body that starts flowing in
// it (64 bodies arriving at once: a chunk each in their first turn, 8 MiB where Node alone read 53 MiB), and
// the paused bodies are resumed oldest first, about two a turn: with 64 bodies waiting, each advances every ~32
// turns (turns are short: that is the point). Idle, a turn is microseconds long: a lone upload is not slowed.
// Not paced: a body read in 'readable' mode (multer draining a refused form to its end) or resumed out of turn
// by the stream it is piped to (busboy's 'drain'); the former is not counted against the budget either.
import type { Readable } from 'node:stream';

/**
 * The bytes of request bodies handed on in one turn before the rest wait for the next: two of Node's 64 KiB
 * reads. Measured with bench:texts (64 texts of 1 MiB at once): /health's p99 went from 43-56 ms to 25-32 ms
 * with 128 or 256 KiB, and no lower with 32 or 64 KiB (the garbage collector's pauses are then what is left).
 */
export const TURN_BYTES = 128 * 1024;

export class ReadTurns {
  readonly #turnBytes: number;
  #spent = 0;
  #scheduled = false;
  /** Paused bodies, oldest first, each with the size of the chunk that paused it (what it will hand on first). */
  readonly #waiting = new Map<Readable, number>();
  /** Bodies whose answer is out: never queued again, so that no later turn resumes their reading. */
  readonly #forgotten = new WeakSet<Readable>();

  constructor(turnBytes = TURN_BYTES) {
    this.#turnBytes = turnBytes;
  }

  /** Bodies waiting for a turn. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * Counts a chunk that `body` has just handed on (call it from the body's 'data' listener); pauses the body
   * until a later turn when this turn's budget is spent.
   */
  took(body: Readable, bytes: number): void {
    // Not flowing: read in 'readable' mode by someone who paces it (multer draining a refused form).
    if (body.readableFlowing !== true || this.#forgotten.has(body)) return;
    this.#spent += bytes;
    this.#schedule();
    if (this.#spent <= this.#turnBytes) return;
    body.pause();
    this.#waiting.delete(body);
    this.#waiting.set(body, bytes);
  }

  /** Drops `body` from the queue for good: its answer is out and the rest of it is not to be read. */
  forget(body: Readable): void {
    this.#waiting.delete(body);
    this.#forgotten.add(body);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#nextTurn);
  }

  /**
   * A new turn: resumes the oldest paused bodies, as many as the budget is expected to take, and forgets those
   * that went away meanwhile (an aborted request's).
   */
  readonly #nextTurn = (): void => {
    this.#scheduled = false;
    this.#spent = 0;
    let expected = 0;
    for (const [body, bytes] of this.#waiting) {
      if (body.destroyed || body.readableEnded) {
        this.#waiting.delete(body);
      } else if (expected < this.#turnBytes) {
        this.#waiting.delete(body);
        expected += bytes;
        body.resume();
      }
    }
    if (this.#waiting.size > 0) this.#schedule();
  };
}

/** The process's turns: one event loop, one budget, shared by every app the process serves. */
export const bodyReadTurns = new ReadTurns();
