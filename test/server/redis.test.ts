// REDIS_URL, against a real redis-server and real services: instances that serve the same model share answers,
// a new model never meets an old answer, entries expire, rate limits are shared, and a Redis that is slow or
// down fails no request (computed, logged once, counted), then is used again when it is back. And what Redis
// holds is not trusted: entries planted or copied by anyone without CACHE_SECRET, or not of the shape the
// service stores, are misses (the answer computed), never served.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { modelContentId } from '../../src/classifier/model-id.js';
import { imageDigest, predictionKey, RedisPredictionCache } from '../../src/server/prediction-cache.js';
import { DEFAULT_CLASSES, expectPredictionBody, metric } from '../helpers/http.js';
import { waitForLog } from '../helpers/processes.js';
import { freePort, HAVE_REDIS, startRedis, type TestRedis } from '../helpers/redis.js';
import { DEFAULT_MODEL_DIR, getJson, predict, startServer, type TestServer, useServers } from '../helpers/server.js';

if (!HAVE_REDIS) console.warn('[redis.test] redis-server is not installed (scripts/setup.sh installs it): these tests are skipped');

/** The secret the test instances share (CACHE_SECRET is required with REDIS_URL). */
const SECRET = 'redis-test-secret-0123456789abcdef0123456789abcdef';

let redis: TestRedis;
let photo: (seed: number) => Promise<Buffer>;
beforeAll(async () => {
  if (!HAVE_REDIS) return;
  redis = await startRedis();
  photo = (seed) =>
    sharp({ create: { width: 320, height: 240, channels: 3, background: { r: (seed * 53) % 256, g: (seed * 97) % 256, b: 90 } } })
      .jpeg()
      .toBuffer();
});
afterAll(async () => {
  await redis?.kill();
});
// Registered after Redis' afterAll, so run before it: the servers stop, then Redis.
const server = useServers({ env: { CACHE_SECRET: SECRET } });

/** A client of the test's Redis that knows SECRET (it computes the service's keys and signs), connected. */
async function secretHolder(): Promise<RedisPredictionCache> {
  const logger = pino({ level: 'silent' });
  const cache = new RedisPredictionCache({ url: redis.url, ttlSeconds: 600, logger, secret: SECRET, classNames: () => DEFAULT_CLASSES, timeoutMs: 30_000 });
  expect(await cache.ready(10_000)).toBe(true);
  return cache;
}

describe.skipIf(!HAVE_REDIS)('REDIS_URL', () => {
  it('instances serving the same model share answers; another model never meets them', async () => {
    const [a, b] = await Promise.all([server({ REDIS_URL: redis.url }), server({ REDIS_URL: redis.url })]);
    expect((await getJson(a.url, '/system_status')).body.prediction_cache.store).toBe('redis');
    const image = await photo(1);
    const first = await predict(a.url, image, 'shared text');
    expect(first.body.cache_hit).toBe(false);
    const other = await predict(b.url, image, 'shared text');
    expect(other.body).toEqual({ ...first.body, cache_hit: true });
    expect((await predict(b.url, image, 'another text')).body.cache_hit).toBe(false);

    // the same weights with a class renamed: another model (its content id differs), so no shared answer
    const dir = mkdtempSync(path.join(tmpdir(), 'redis-model-'));
    for (const f of readdirSync(DEFAULT_MODEL_DIR)) copyFileSync(path.join(DEFAULT_MODEL_DIR, f), path.join(dir, f));
    const mapping = JSON.parse(readFileSync(path.join(dir, 'class_mapping.json'), 'utf8')) as Record<string, number>;
    const renamed = Object.fromEntries(Object.entries(mapping).map(([k, v]) => [v === 0 ? 'pizza_v2' : k, v]));
    const mappingText = JSON.stringify(renamed);
    writeFileSync(path.join(dir, 'class_mapping.json'), mappingText);
    const meta = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as { classes: string[]; files: Record<string, unknown> };
    meta.classes = Object.entries(renamed)
      .sort((x, y) => x[1] - y[1])
      .map(([k]) => k);
    // as the exporter would record the new mapping (a file that differs from model.json's record is refused)
    meta.files['class_mapping.json'] = { sha256: createHash('sha256').update(mappingText).digest('hex'), bytes: Buffer.byteLength(mappingText) };
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify(meta));
    try {
      const c = await server({ REDIS_URL: redis.url, MODEL_DIR: dir });
      const fresh = await predict(c.url, image, 'shared text');
      expect(fresh.body.cache_hit).toBe(false);
      expect(fresh.body.predictions.map((p: { class_name: string }) => p.class_name)).toContain('pizza v2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('entries expire after PREDICTION_CACHE_TTL', async () => {
    const s = await server({ REDIS_URL: redis.url, PREDICTION_CACHE_TTL: '2' });
    const holder = await secretHolder();
    const image = await photo(2);
    expect((await predict(s.url, image, 'ttl')).body.cache_hit).toBe(false);
    // The one entry stored with this TTL (the others of this Redis live PREDICTION_CACHE_TTL's default):
    // Redis itself expires it, so the test waits for Redis to drop it, then asks again.
    const keys = await holder.redis.keys('torchscript-node:prediction:v2:*');
    const ttls = await Promise.all(keys.map((k) => holder.redis.pttl(k)));
    const entry = keys.filter((_, i) => ttls[i] > 0 && ttls[i] <= 2_000);
    expect(entry).toHaveLength(1);
    const bound = Date.now() + 30_000;
    while ((await holder.redis.exists(entry[0])) === 1) {
      expect(Date.now(), 'the entry still exists 30 s after it was stored with a TTL of 2 s').toBeLessThan(bound);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await predict(s.url, image, 'ttl')).body.cache_hit).toBe(false);
    await holder.close();
  }, 60_000);

  it('RATE_LIMIT counts in Redis: the instances share one budget per client', async () => {
    const [a, b] = await Promise.all([server({ REDIS_URL: redis.url, RATE_LIMIT: '2' }), server({ REDIS_URL: redis.url, RATE_LIMIT: '2' })]);
    const statuses = [];
    for (const s of [a, b, a]) statuses.push((await getJson(s.url, '/classes')).status);
    expect(statuses).toEqual([200, 200, 429]);
  }, 60_000);

  it('an instance whose Redis is not there at start-up starts anyway (after a bounded wait) and answers', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const started = performance.now();
    const s = await server({ REDIS_URL: url });
    // the wait is bounded (3 s, overlapping the model's load): start-up takes a few seconds, not the helper's 60
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(s.logs.some((l) => l.msg === 'Redis is not reachable at start-up: serving without the shared cache and counters until it is')).toBe(true);
    const res = await predict(s.url, await photo(5), 'no redis yet');
    expect(res.status).toBe(200);
    expect(res.body.cache_hit).toBe(false);
  }, 60_000);

  it('a slow Redis costs a request a tenth of a second at most; a Redis that is down fails none; back, it is used again', async () => {
    const s = await server({ REDIS_URL: redis.url });
    const image = await photo(3);
    await predict(s.url, image, 'outage');

    // CLIENT PAUSE holds every client's commands for 10 s (answered once the pause is in force): the lookup gives
    // up after its 100 ms, the answer is computed, long before the pause ends (a margin no busy machine eats)
    const admin = await secretHolder();
    try {
      await admin.redis.call('CLIENT', 'PAUSE', '10000', 'ALL');
      const started = performance.now();
      const slow = await predict(s.url, await photo(4), 'outage');
      expect(slow.status).toBe(200);
      expect(performance.now() - started).toBeLessThan(5000);
    } finally {
      await admin.close();
    }

    await redis.kill();
    for (let i = 0; i < 3; i++) {
      const res = await predict(s.url, image, 'outage');
      expect(res.status).toBe(200);
      expect(res.body.cache_hit).toBe(false);
    }
    expect(await metric(s.url, 'cache_errors_total{cache="predictions"}')).toBeGreaterThanOrEqual(3);
    const warnings = () => s.logs.filter((l) => l.msg === 'Redis is unavailable: answers are computed without the shared cache until it is back');
    expect(warnings()).toHaveLength(1);

    await redis.restart();
    // ioredis reconnects (backing off to 2 s at most), says so, and then answers are shared again
    await waitForLog(s, (l) => l.msg === 'Redis is back: answers are shared again');
    expect((await predict(s.url, image, 'after the outage')).body.cache_hit).toBe(false);
    expect((await predict(s.url, image, 'after the outage')).body.cache_hit).toBe(true);
    expect(warnings()).toHaveLength(1);
  }, 120_000);

  it('REDIS_URL without CACHE_SECRET (or with a short one): the service does not start, and says how to make one', async () => {
    const [none, short] = await Promise.all([
      startServer({ REDIS_URL: redis.url, CACHE_SECRET: undefined }).catch((e: unknown) => e as Error),
      startServer({ REDIS_URL: redis.url, CACHE_SECRET: 'too-short-a-secret' }).catch((e: unknown) => e as Error),
    ]);
    expect((none as Error).message).toContain('REDIS_URL is set but CACHE_SECRET is not');
    expect((none as Error).message).toContain('openssl rand -hex 32');
    expect((short as Error).message).toContain('Expected at least 32 characters without spaces for CACHE_SECRET but received 18 characters');
    expect((short as Error).message).not.toContain('too-short-a-secret');
  }, 60_000);
});

describe.skipIf(!HAVE_REDIS)('REDIS_URL: what Redis holds is not trusted', () => {
  let s: TestServer;
  /** A client of the same Redis that knows the secret: it computes the keys the service uses, and plants values. */
  let planter: RedisPredictionCache;
  let modelId: string;
  let seed = 100;
  const forged = [{ class_name: 'FORGED', probability: 1.5, confidence: '150.00%' }];

  beforeAll(async () => {
    if (!HAVE_REDIS) return;
    s = await server({ REDIS_URL: redis.url });
    planter = await secretHolder();
    // the model's content id, as the service computes it (model-id.ts) from the files it runs
    const { model_files: files } = (await getJson(s.url, '/system_status')).body as { model_files: string[] };
    modelId = await modelContentId([...files, 'class_mapping.json', 'vocab.txt', 'model.json'].map((f) => path.join(DEFAULT_MODEL_DIR, f)));
  }, 120_000);
  afterAll(async () => {
    await planter?.close();
  });

  /** A new photo and its cache key (that of predict.ts). */
  async function request(text: string): Promise<{ image: Buffer; key: string }> {
    const image = await photo(seed++);
    return { image, key: predictionKey(modelId, text, imageDigest(image)) };
  }

  /** The answer is computed, by the model: never what was planted. */
  async function expectComputed(image: Buffer, text: string): Promise<void> {
    const res = await predict(s.url, image, text);
    expect(res.status).toBe(200);
    expect(res.body.cache_hit).toBe(false);
    expectPredictionBody(res.body);
  }

  it('the key the service computed so far (from public data): a forged answer planted there is never read', async () => {
    const { image, key } = await request('planted');
    await planter.redis.set(`torchscript-node:prediction:${key}`, JSON.stringify(forged));
    await expectComputed(image, 'planted');
    // and the service's own entry is elsewhere: at a key only the secret computes
    expect((await predict(s.url, image, 'planted')).body.cache_hit).toBe(true);
    expect(await planter.redis.exists(planter.redisKey(key))).toBe(1);
  }, 60_000);

  it('at the key the service reads: no tag, a wrong tag, a non-array, 35 MB, a hash: each a miss, the answer computed', async () => {
    const values: [string, string | Buffer | undefined][] = [
      ['no tag', JSON.stringify(forged)],
      ['wrong tag', `${'0'.repeat(64)}.${JSON.stringify(forged)}`],
      ['a non-array', `${'0'.repeat(64)}.{"predictions": 1}`],
      ['35 MB', Buffer.alloc(35 * 1024 * 1024, 0x5b)],
      ['a hash', undefined],
    ];
    const invalidBefore = (await getJson(s.url, '/system_status')).body.prediction_cache.invalid as number;
    for (const [what, value] of values) {
      const { image, key } = await request(what);
      if (value === undefined) await planter.redis.hset(planter.redisKey(key), 'class_name', 'FORGED');
      else await planter.redis.set(planter.redisKey(key), value);
      const started = performance.now();
      await expectComputed(image, what);
      expect(performance.now() - started, what).toBeLessThan(5_000);
    }
    const cache = (await getJson(s.url, '/system_status')).body.prediction_cache;
    expect(cache.invalid - invalidBefore).toBe(values.length);
    expect(cache.errors).toBe(0);
    // refused entries are logged once, without their content
    const refused = s.logs.filter((l) => String(l.msg).startsWith('A Redis entry was refused'));
    expect(refused).toHaveLength(1);
    expect(JSON.stringify(refused)).not.toContain('FORGED');
  }, 60_000);

  it('signed with the secret but not an answer this service makes (a forged class, probability 1.5, [1,2,3]): a miss', async () => {
    const [name] = DEFAULT_CLASSES;
    const wrong: unknown[] = [
      forged,
      [1, 2, 3],
      [{ class_name: name.replaceAll('_', ' '), probability: 1.5, confidence: '150.00%' }],
      [{ class_name: name.replaceAll('_', ' '), probability: 0.5, confidence: '99.00%' }],
      [{ class_name: name.replaceAll('_', ' '), probability: 0.5, confidence: '50.00%', extra: 1 }],
      [],
    ];
    for (const [i, value] of wrong.entries()) {
      const { image, key } = await request(`signed ${i}`);
      await planter.set(key, value as never);
      await expectComputed(image, `signed ${i}`);
    }
  }, 60_000);

  it('an entry copied from another key (a real answer, its tag valid there) is refused; the entry itself still serves', async () => {
    const a = await request('copied');
    const b = await request('copied');
    const first = await predict(s.url, a.image, 'copied');
    expect(first.body.cache_hit).toBe(false);
    const entry = await planter.redis.getBuffer(planter.redisKey(a.key));
    expect(entry).not.toBeNull();
    await planter.redis.set(planter.redisKey(b.key), entry!);
    await expectComputed(b.image, 'copied');
    expect((await predict(s.url, a.image, 'copied')).body).toEqual({ ...first.body, cache_hit: true });
  }, 60_000);
});
