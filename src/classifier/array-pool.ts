// Reused Float32Arrays of one length. A busy service decodes dozens of photos a second into 600 KB arrays
// (3 x 224 x 224 floats); allocated anew, their memory makes V8 collect garbage every few hundred milliseconds,
// and each full collection holds the event loop for several milliseconds. Reused, they cost nothing.
export class Float32ArrayPool {
  readonly #free: Float32Array[] = [];

  /** `keep`: how many released arrays are kept for reuse at most (the rest go to the garbage collector). */
  constructor(
    readonly length: number,
    readonly keep: number,
  ) {}

  /** An array of `length` values (its contents are whatever the last user left). */
  acquire(): Float32Array {
    return this.#free.pop() ?? new Float32Array(this.length);
  }

  /** Gives an array back; it must no longer be read or written by anyone. */
  release(array: Float32Array): void {
    if (array.length === this.length && this.#free.length < this.keep) this.#free.push(array);
  }

  /** Arrays kept for reuse now. */
  get size(): number {
    return this.#free.length;
  }
}
