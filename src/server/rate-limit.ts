// RATE_LIMIT: requests a minute per API key (or, without a valid one, per client address), with express-rate-limit.
// A wrong key counts against the client's address, so that trying keys is throttled like any other request.
// Past it: 429 with the standard RateLimit headers (draft 8: RateLimit and RateLimit-Policy) and Retry-After.
// /health is exempt (liveness probes must never be throttled). The counters live in a store: in memory by
// default, or one the caller gives (a Redis store shares them between instances).
import { isIP } from 'node:net';

import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';

import { HttpError } from './errors.js';
import { tooManyRequests } from './messages.js';

export interface RateLimitOptions {
  /** Requests a minute; 0 turns the limit off. */
  perMinute: number;
  /** Where the counters live; default express-rate-limit's memory store (one per process). */
  store?: Store;
  /** The request's valid API key as an identity (never the key itself), or undefined; default: none. */
  keyIdentity?: (req: Request) => string | undefined;
}

/**
 * The client's address: Express's req.ip (from X-Forwarded-For as far as TRUST_PROXY trusts the hops) when it
 * is an address, else the connection's own. A forwarded value that is no address (`garbage1`) would otherwise
 * be a fresh counter for every value a client makes up.
 */
export function clientAddress(req: Request): string {
  const ip = req.ip;
  return ip !== undefined && isIP(ip) !== 0 ? ip : (req.socket.remoteAddress ?? '');
}

export function rateLimiter({ perMinute, store, keyIdentity }: RateLimitOptions): RequestHandler {
  if (perMinute <= 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    ...(store ? { store } : {}),
    // A store that fails (Redis down) lets the request through rather than failing it.
    passOnStoreError: true,
    skip: (req) => req.path === '/health',
    // A valid key counts for itself (hashed: counters must not hold keys), else the client's address (IPv6 by /56).
    keyGenerator: (req) => {
      const key = keyIdentity?.(req);
      return key ? `key:${key}` : `ip:${ipKeyGenerator(clientAddress(req))}`;
    },
    // express-rate-limit has set RateLimit, RateLimit-Policy and Retry-After: the error handler answers FastAPI's body.
    handler: (_req, _res, next) => next(new HttpError(429, tooManyRequests(perMinute))),
  });
}

/**
 * The counters in Redis (rate-limit-redis), shared by every instance that uses the same Redis. rate-limit-redis
 * loads its script as it is made, which fails while Redis is unreachable (commands are not queued: see
 * RedisPredictionCache); so a store is made each time the connection becomes ready, and until then counting
 * fails, which lets requests through (passOnStoreError) rather than failing them.
 */
export function redisRateLimitStore(redis: Redis): Store {
  let current: RedisStore | undefined;
  let options: Parameters<NonNullable<Store['init']>>[0] | undefined;
  const make = (): void => {
    current = new RedisStore({
      prefix: 'torchscript-node:rate-limit:',
      sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
    });
    if (options) current.init(options);
  };
  if (redis.status === 'ready') make();
  redis.on('ready', make);
  const store = (): RedisStore => {
    if (!current) throw new Error('Redis is not reachable yet: the request is not counted');
    return current;
  };
  return {
    prefix: 'torchscript-node:rate-limit:',
    localKeys: false,
    init: (o) => {
      options = o;
      current?.init(o);
    },
    increment: (key) => store().increment(key),
    decrement: (key) => store().decrement(key),
    resetKey: (key) => store().resetKey(key),
    get: (key) => store().get(key),
  };
}
