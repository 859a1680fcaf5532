// The prediction cache of the workshop's API: answers of /predict by (model, text, image). Two stores behind one
// interface:
//   MemoryPredictionCache   the last PREDICTION_CACHE_SIZE answers in this process (lru-cache), the default;
//   RedisPredictionCache    REDIS_URL: shared by every instance (and worker) that serves the same model.
// The key is made from the model's content id (model-id.ts: the SHA-256 of its files), the text and the image:
// instances serving the same files share answers, and a new model never meets an old model's answer. Entries
// expire after PREDICTION_CACHE_TTL seconds. Redis being slow or down never fails a request: the answer is
// computed, the outage logged once (and its end), and counted in /metrics (cache_errors_total).
import { createHash } from 'node:crypto';

import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';

export interface CachedPrediction {
  class_name: string;
  probability: number;
  confidence: string;
}

export interface PredictionCacheStats {
  size: number;
  max_size: number;
  hits: number;
  misses: number;
  /** Lookups and stores that failed (Redis down or slow); they count as misses. */
  errors: number;
}

export interface PredictionCache {
  readonly kind: 'memory' | 'redis';
  /** The answer kept for `key`, or undefined (also when the store fails). */
  get(key: string): Promise<CachedPrediction[] | undefined>;
  /** Keeps an answer; never rejects (a failure is counted). */
  set(key: string, predictions: CachedPrediction[]): Promise<void>;
  /** A reload made every entry unreachable (the key holds the model): frees them where that is cheap. */
  clear(): void;
  /** Entries kept now (for Redis: this process does not know; its own stores are not counted). */
  readonly size: number;
  readonly stats: PredictionCacheStats;
  close(): Promise<void>;
}

/** An image as the key knows it: its SHA-256 and its length. */
export interface ImageDigest {
  sha256: Uint8Array;
  length: number;
}

/** The SHA-256 of `image`, computed here (the service's uploads arrive with theirs: upload-storage.ts). */
export function imageDigest(image: Uint8Array): ImageDigest {
  return { sha256: createHash('sha256').update(image).digest(), length: image.length };
}

/**
 * The key of one request: SHA-256 of the model's content id, the text and the image's own SHA-256, each
 * length-prefixed so that none can run into the next.
 */
export function predictionKey(modelId: string, text: string, image: ImageDigest): string {
  const textBytes = Buffer.from(text, 'utf8');
  const header = Buffer.alloc(12);
  header.writeUInt32BE(textBytes.length, 0);
  header.writeBigUInt64BE(BigInt(image.length), 4);
  return createHash('sha256').update(modelId).update(header).update(textBytes).update(image.sha256).digest('hex');
}

export class MemoryPredictionCache implements PredictionCache {
  readonly kind = 'memory';
  readonly #entries: LRUCache<string, CachedPrediction[]> | undefined;
  #hits = 0;
  #misses = 0;

  /** `maxEntries` 0 turns caching off; `ttlSeconds` 0: no expiry. */
  constructor(
    readonly maxEntries: number,
    ttlSeconds = 0,
  ) {
    this.#entries = maxEntries > 0 ? new LRUCache({ max: maxEntries, ...(ttlSeconds > 0 ? { ttl: ttlSeconds * 1000 } : {}) }) : undefined;
  }

  async get(key: string): Promise<CachedPrediction[] | undefined> {
    const found = this.#entries?.get(key);
    if (found) this.#hits++;
    else this.#misses++;
    return found;
  }

  async set(key: string, predictions: CachedPrediction[]): Promise<void> {
    this.#entries?.set(key, predictions);
  }

  clear(): void {
    this.#entries?.clear();
  }

  get size(): number {
    return this.#entries?.size ?? 0;
  }

  get stats(): PredictionCacheStats {
    return { size: this.size, max_size: this.maxEntries, hits: this.#hits, misses: this.#misses, errors: 0 };
  }

  async close(): Promise<void> {}
}

export interface RedisCacheOptions {
  url: string;
  ttlSeconds: number;
  logger: Logger;
  /** How long a lookup may take before it counts as a miss (ms). Default 100. */
  timeoutMs?: number;
}

const KEY_PREFIX = 'torchscript-node:prediction:';

export class RedisPredictionCache implements PredictionCache {
  readonly kind = 'redis';
  readonly redis: Redis;
  readonly #ttl: number;
  readonly #logger: Logger;
  #hits = 0;
  #misses = 0;
  #errors = 0;
  #down = false;

  constructor({ url, ttlSeconds, logger, timeoutMs = 100 }: RedisCacheOptions) {
    this.#ttl = ttlSeconds;
    this.#logger = logger;
    this.redis = new Redis(url, {
      // Fail at once while disconnected (the answer is computed instead), never queue commands for later.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A slow Redis costs a request at most this long.
      commandTimeout: timeoutMs,
      connectTimeout: 2_000,
      // Reconnect forever, backing off to 2 s.
      retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
    });
    this.redis.on('error', (err: Error) => this.#failed(err));
    this.redis.on('ready', () => {
      if (this.#down) this.#logger.info('Redis is back: answers are shared again');
      this.#down = false;
    });
  }

  /**
   * Resolves once the connection is ready (true), or after `timeoutMs` (false: the instance starts anyway and
   * computes without the shared cache until Redis answers). Awaited at start-up so that a fresh instance
   * shares answers and rate-limit counters from its first request.
   */
  async ready(timeoutMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    let timer: NodeJS.Timeout | undefined;
    let onReady: (() => void) | undefined;
    const ready = new Promise<boolean>((resolve) => {
      onReady = () => resolve(true);
      this.redis.once('ready', onReady);
    });
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([ready, late]);
    } finally {
      clearTimeout(timer);
      if (onReady) this.redis.off('ready', onReady);
    }
  }

  /** A failure: logged once per outage (until Redis is ready again), counted always. */
  #failed(err: unknown): void {
    if (this.#down) return;
    this.#down = true;
    this.#logger.warn({ err: (err as Error).message }, 'Redis is unavailable: answers are computed without the shared cache until it is back');
  }

  async get(key: string): Promise<CachedPrediction[] | undefined> {
    try {
      const value = await this.redis.get(KEY_PREFIX + key);
      if (value !== null) {
        const parsed = JSON.parse(value) as unknown;
        if (Array.isArray(parsed)) {
          this.#hits++;
          return parsed as CachedPrediction[];
        }
      }
    } catch (err) {
      this.#errors++;
      this.#failed(err);
    }
    this.#misses++;
    return undefined;
  }

  async set(key: string, predictions: CachedPrediction[]): Promise<void> {
    try {
      await this.redis.set(KEY_PREFIX + key, JSON.stringify(predictions), 'EX', this.#ttl);
    } catch (err) {
      this.#errors++;
      this.#failed(err);
    }
  }

  /** Entries of a replaced model expire on their own (their keys name the model). */
  clear(): void {}

  get size(): number {
    return 0;
  }

  get stats(): PredictionCacheStats {
    return { size: 0, max_size: 0, hits: this.#hits, misses: this.#misses, errors: this.#errors };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
