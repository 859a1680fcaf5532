// The prediction cache of the workshop's API: the last N answers of /predict (least recently used evicted),
// keyed by a hash of the model's generation, the text and the image bytes. The generation is in the key so that
// no answer of a replaced model is ever served again, even one whose prediction finished after the reload.
import { createHash, webcrypto } from 'node:crypto';

import { LRUCache } from 'lru-cache';

export interface CachedPrediction {
  class_name: string;
  probability: number;
  confidence: string;
}

export class PredictionCache {
  readonly #entries: LRUCache<string, CachedPrediction[]> | undefined;
  #hits = 0;
  #misses = 0;

  /** `maxEntries` 0 turns caching off. */
  constructor(readonly maxEntries: number) {
    this.#entries = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : undefined;
  }

  /**
   * The key of one request: SHA-256 of the generation, the text and the image's own SHA-256, each
   * length-prefixed so that none can run into the next. The image, up to MAX_UPLOAD_MB, is hashed on libuv's
   * pool (WebCrypto's digest): milliseconds a megabyte that the event loop does not spend.
   */
  static async key(generation: number, text: string, image: Uint8Array): Promise<string> {
    const imageDigest = Buffer.from(await webcrypto.subtle.digest('SHA-256', image));
    const textBytes = Buffer.from(text, 'utf8');
    const header = Buffer.alloc(16);
    header.writeUInt32BE(generation >>> 0, 0);
    header.writeUInt32BE(textBytes.length, 4);
    header.writeBigUInt64BE(BigInt(image.length), 8);
    return createHash('sha256').update(header).update(textBytes).update(imageDigest).digest('hex');
  }

  get(key: string): CachedPrediction[] | undefined {
    const found = this.#entries?.get(key);
    if (found) this.#hits++;
    else this.#misses++;
    return found;
  }

  set(key: string, predictions: CachedPrediction[]): void {
    this.#entries?.set(key, predictions);
  }

  /** A reload makes every entry unreachable (the generation changed): free them at once. */
  clear(): void {
    this.#entries?.clear();
  }

  get size(): number {
    return this.#entries?.size ?? 0;
  }

  get stats(): { size: number; max_size: number; hits: number; misses: number } {
    return { size: this.size, max_size: this.maxEntries, hits: this.#hits, misses: this.#misses };
  }
}
