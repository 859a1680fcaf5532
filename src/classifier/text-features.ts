// The text encoder's output for each distinct text, computed once. The workshop's clients send the same text
// ("Image of food") with almost every photo, and in the full-size model BERT is three quarters of the work:
// with the model folder's two parts (text_encoder + head), a request whose text was seen before runs the
// head alone.
//
// Keyed by the token ids (what the encoder sees), not the string: "Image of food" and "image  of FOOD" share
// an entry. Concurrent requests for a text not yet cached share one computation.
import { LRUCache } from 'lru-cache';

export interface TextFeatureStats {
  /** Texts whose features are kept now. */
  size: number;
  maxSize: number;
  /** Bytes one entry holds (max_length x hidden x 4), known once the first text has been encoded. */
  bytesPerEntry: number;
  /** Requests answered from the cache, or joined to a computation of the same text in flight. */
  hits: number;
  /** Requests that ran the text encoder. */
  misses: number;
}

export class TextFeatureCache {
  readonly #entries: LRUCache<string, Float32Array> | undefined;
  readonly #inFlight = new Map<string, Promise<Float32Array>>();
  readonly #maxSize: number;
  #bytesPerEntry = 0;
  #hits = 0;
  #misses = 0;

  /** `maxSize` 0 keeps nothing (every request runs the text encoder; concurrent equal texts still share). */
  constructor(maxSize: number) {
    if (!Number.isInteger(maxSize) || maxSize < 0) {
      throw new RangeError(`Expected an integer of at least 0 for the text feature cache size but received ${String(maxSize)}`);
    }
    this.#maxSize = maxSize;
    this.#entries = maxSize > 0 ? new LRUCache({ max: maxSize }) : undefined;
  }

  /** The key of a text's token ids: the real tokens, up to their length (the rest is padding). */
  static key(inputIds: BigInt64Array, length: number): string {
    return inputIds.subarray(0, length).join(',');
  }

  /**
   * The features for `key`: from the cache, from a computation of the same key in flight, or from `compute`
   * (whose result is then kept). `cached` says whether the encoder was spared.
   */
  async get(key: string, compute: () => Promise<Float32Array>): Promise<{ features: Float32Array; cached: boolean }> {
    const found = this.#entries?.get(key);
    if (found) {
      this.#hits++;
      return { features: found, cached: true };
    }
    const running = this.#inFlight.get(key);
    if (running) {
      this.#hits++;
      return { features: await running, cached: true };
    }
    this.#misses++;
    const computation = compute().then((features) => {
      this.#bytesPerEntry = features.byteLength;
      this.#entries?.set(key, features);
      return features;
    });
    this.#inFlight.set(key, computation);
    try {
      return { features: await computation, cached: false };
    } finally {
      this.#inFlight.delete(key);
    }
  }

  /** Keeps `features` for `key` (counted neither as a hit nor as a miss). */
  put(key: string, features: Float32Array): void {
    this.#bytesPerEntry = features.byteLength;
    this.#entries?.set(key, features);
  }

  clear(): void {
    this.#entries?.clear();
  }

  get stats(): TextFeatureStats {
    return { size: this.#entries?.size ?? 0, maxSize: this.#maxSize, bytesPerEntry: this.#bytesPerEntry, hits: this.#hits, misses: this.#misses };
  }
}
