// The prediction cache of the workshop's API: answers of /predict by (model, text, image). Two stores behind one
// interface:
//   MemoryPredictionCache   the last PREDICTION_CACHE_SIZE answers in this process (lru-cache), the default;
//   RedisPredictionCache    REDIS_URL: shared by every instance (and worker) that serves the same model.
// The key is made from the model's content id (model-id.ts: the SHA-256 of its files), the text and the image:
// instances serving the same files share answers, and a new model never meets an old model's answer. Entries
// expire after PREDICTION_CACHE_TTL seconds. Redis being slow or down never fails a request: the answer is
// computed, the outage logged once (and its end), and counted in /metrics (cache_errors_total).
// What Redis holds is not trusted: the keys derive from public data (the model's files, a photo), so anyone who
// can write to Redis could plant an answer before the photo is ever sent. So with Redis (CACHE_SECRET, shared
// by the instances): the Redis key is an HMAC of the key (a planted key cannot be computed), the value carries
// an HMAC tag over key and payload (a value copied from another key is refused), at most MAX_ENTRY_BYTES are
// read, and only the exact shape this service stores is served (validPredictions): anything else is a miss.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';

import { TOP_K } from './messages.js';

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
  /** Entries found but refused (not signed by this service's secret, or not an answer it makes); misses too. */
  invalid?: number;
}

export interface PredictionCache {
  readonly kind: 'memory' | 'redis';
  /**
   * The answer kept for `key`, or undefined (also when the store fails). `classNames`: those of the model the
   * key was made for, which a stored answer must name (a store that does not trust its entries checks them).
   */
  get(key: string, classNames?: readonly string[]): Promise<CachedPrediction[] | undefined>;
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

/** The longest value a Redis entry may have: beyond, it is not read (a valid one is far smaller). */
export const MAX_ENTRY_BYTES = 64 * 1024;

/**
 * `value` when it is exactly an answer this service makes (predict.ts's toWorkshopPrediction, top TOP_K):
 * 1 to TOP_K objects of exactly class_name (one of `classNames`, '_' as ' ', each once), probability (finite, in
 * [0, 1], most probable first) and confidence (the probability as the service writes it); otherwise undefined.
 */
export function validPredictions(value: unknown, classNames: Iterable<string>): CachedPrediction[] | undefined {
  if (!Array.isArray(value) || value.length === 0 || value.length > TOP_K) return undefined;
  const known = new Set([...classNames].map((c) => c.replaceAll('_', ' ')));
  const seen = new Set<string>();
  let previous = Infinity;
  for (const entry of value as unknown[]) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return undefined;
    const keys = Object.keys(entry);
    if (keys.length !== 3) return undefined;
    const { class_name: name, probability: p, confidence } = entry as Record<string, unknown>;
    if (typeof name !== 'string' || !known.has(name) || seen.has(name)) return undefined;
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 1 || p > previous) return undefined;
    if (confidence !== `${(p * 100).toFixed(2)}%`) return undefined;
    seen.add(name);
    previous = p;
  }
  return value as CachedPrediction[];
}

export interface RedisCacheOptions {
  url: string;
  ttlSeconds: number;
  logger: Logger;
  /** The secret the instances share (CACHE_SECRET, 32+ characters): the HMAC key of the keys and values. */
  secret: string;
  /** The class names of the model being served (as in its class mapping): what an entry may name, when get() is not told. */
  classNames: () => Iterable<string>;
  /** How long a lookup may take before it counts as a miss (ms). Default 100. */
  timeoutMs?: number;
}

/** v2: keys and values signed (v1, unsigned, is never read). */
const KEY_PREFIX = 'torchscript-node:prediction:v2:';
/** The tag before the payload: 64 hex digits and a '.'. */
const TAG_LENGTH = 64;

export class RedisPredictionCache implements PredictionCache {
  readonly kind = 'redis';
  readonly redis: Redis;
  readonly #ttl: number;
  readonly #logger: Logger;
  readonly #secret: string;
  readonly #classNames: () => Iterable<string>;
  #hits = 0;
  #misses = 0;
  #errors = 0;
  #invalid = 0;
  #down = false;

  constructor({ url, ttlSeconds, logger, secret, classNames, timeoutMs = 100 }: RedisCacheOptions) {
    if (secret.length < 32) throw new Error('RedisPredictionCache needs a secret of at least 32 characters (CACHE_SECRET)');
    this.#ttl = ttlSeconds;
    this.#logger = logger;
    this.#secret = secret;
    this.#classNames = classNames;
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

  /** The Redis key of `key`: an HMAC, so that no one without the secret can compute where an answer goes. */
  redisKey(key: string): string {
    return KEY_PREFIX + createHmac('sha256', this.#secret).update('key\n').update(key).digest('hex');
  }

  /** The tag of `payload` stored at `redisKey`: binds the one to the other. */
  #tag(redisKey: string, payload: string): Buffer {
    return createHmac('sha256', this.#secret).update('value\n').update(redisKey).update('\n').update(payload).digest();
  }

  /** An entry refused: counted, and logged the first time (with no content from it). Undefined: a miss. */
  #refused(reason: string): undefined {
    if (this.#invalid++ === 0) {
      this.#logger.warn({ reason }, 'A Redis entry was refused (not signed with CACHE_SECRET, or not an answer of this service): computed instead');
    }
    return undefined;
  }

  /** The answer stored at `redisKey` when its tag is right and it is one this service makes. */
  #verify(redisKey: string, value: Buffer, classNames: Iterable<string>): CachedPrediction[] | undefined {
    if (value.length > MAX_ENTRY_BYTES) return this.#refused('too large');
    const text = value.toString('utf8');
    const dot = text.indexOf('.');
    const tag = dot === TAG_LENGTH ? Buffer.from(text.slice(0, dot), 'hex') : undefined;
    const payload = text.slice(dot + 1);
    if (!tag || tag.length !== TAG_LENGTH / 2 || !timingSafeEqual(tag, this.#tag(redisKey, payload))) return this.#refused('no valid tag');
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      return this.#refused('not JSON');
    }
    return validPredictions(parsed, classNames) ?? this.#refused('not an answer of this model');
  }

  async get(key: string, classNames?: readonly string[]): Promise<CachedPrediction[] | undefined> {
    const redisKey = this.redisKey(key);
    try {
      // One byte more than an entry may have: a longer value shows as such, and is never read whole.
      const value = await this.redis.getrangeBuffer(redisKey, 0, MAX_ENTRY_BYTES);
      if (value.length > 0) {
        // The classes of the model the request holds (a reload may have swapped the served one meanwhile).
        const predictions = this.#verify(redisKey, value, classNames ?? this.#classNames());
        if (predictions) {
          this.#hits++;
          return predictions;
        }
      }
    } catch (err) {
      if ((err as Error).message?.startsWith('WRONGTYPE')) {
        // Something else than an entry at the key (a list, a hash): refused, Redis is fine.
        this.#refused('not a string');
      } else {
        this.#errors++;
        this.#failed(err);
      }
    }
    this.#misses++;
    return undefined;
  }

  async set(key: string, predictions: CachedPrediction[]): Promise<void> {
    const redisKey = this.redisKey(key);
    const payload = JSON.stringify(predictions);
    const value = `${this.#tag(redisKey, payload).toString('hex')}.${payload}`;
    if (Buffer.byteLength(value) > MAX_ENTRY_BYTES) return;
    try {
      await this.redis.set(redisKey, value, 'EX', this.#ttl);
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
    return { size: 0, max_size: 0, hits: this.#hits, misses: this.#misses, errors: this.#errors, invalid: this.#invalid };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
