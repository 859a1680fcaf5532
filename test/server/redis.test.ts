// REDIS_URL, against a real redis-server and real services: instances that serve the same model share answers,
// a new model never meets an old answer, entries expire, rate limits are shared, and a Redis that is slow or
// down fails no request (computed, logged once, counted), then is used again when it is back.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freePort, HAVE_REDIS, startRedis, type TestRedis } from '../helpers/redis.js';
import { DEFAULT_MODEL_DIR, getJson, predict, startServer, type TestServer } from '../helpers/server.js';

if (!HAVE_REDIS) console.warn('[redis.test] redis-server is not installed (scripts/setup.sh installs it): these tests are skipped');

const servers: TestServer[] = [];
async function server(env: Record<string, string>): Promise<TestServer> {
  const s = await startServer(env);
  servers.push(s);
  return s;
}

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
  for (const s of servers) await s.stop();
  await redis?.kill();
});

async function metric(url: string, sample: string): Promise<number> {
  const line = (await (await fetch(`${url}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${sample} `));
  return Number(line?.split(' ').at(-1));
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
    writeFileSync(path.join(dir, 'class_mapping.json'), JSON.stringify(renamed));
    const meta = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as { classes: string[] };
    meta.classes = Object.entries(renamed)
      .sort((x, y) => x[1] - y[1])
      .map(([k]) => k);
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
    const s = await server({ REDIS_URL: redis.url, PREDICTION_CACHE_TTL: '1' });
    const image = await photo(2);
    await predict(s.url, image, 'ttl');
    expect((await predict(s.url, image, 'ttl')).body.cache_hit).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect((await predict(s.url, image, 'ttl')).body.cache_hit).toBe(false);
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

    // DEBUG SLEEP blocks Redis for 2 s: the lookup gives up, the answer is computed
    const sleeping = redis.command('DEBUG', 'SLEEP', '2');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    const slow = await predict(s.url, await photo(4), 'outage');
    expect(slow.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1500);
    await sleeping;

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
    // ioredis reconnects (backing off to 2 s at most): then answers are shared again
    let hit = false;
    for (let i = 0; i < 50 && !hit; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await predict(s.url, image, 'after the outage');
      hit = (await predict(s.url, image, 'after the outage')).body.cache_hit === true;
    }
    expect(hit).toBe(true);
    expect(s.logs.some((l) => l.msg === 'Redis is back: answers are shared again')).toBe(true);
    expect(warnings()).toHaveLength(1);
  }, 120_000);
});
