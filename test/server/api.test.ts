// The workshop's API against a real running service (its own process, the real addon, the default model in
// models/, real JPEGs, real HTTP): every endpoint and field of ../shared/docs/api-contract.md, the errors, the
// prediction cache, the seed's curl lines run with curl, and 100 predictions at once.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { FoodClassifier } from '../../src/classifier/classifier.js';
import { readModelFolder } from '../../src/classifier/model-folder.js';
import { curlLines, docs } from '../helpers/docs.js';
import { DEFAULT_CLASSES as CLASSES, expectPredictionBody } from '../helpers/http.js';
import { pngBomb } from '../helpers/images.js';
import { DEFAULT_MODEL_DIR, REPO, getJson, predict, type TestServer, useServers } from '../helpers/server.js';
import { SHARED_DATA, sharedPhotos } from '../helpers/torchvision.js';

const run = promisify(execFile);

const photos = sharedPhotos();
const HAVE_PHOTOS = photos.val.length > 0;
const SEED = path.resolve(SHARED_DATA, '..', 'seed', 'workshop-3-README.md');
const SEED_PHOTO = path.join(SHARED_DATA, 'samples', 'pexels-valeriya-1639557.jpg');
if (!HAVE_PHOTOS) console.warn(`[api.test] ${SHARED_DATA} is absent: the tests that need its photos are skipped; synthetic JPEGs stand in elsewhere`);

/** A real JPEG: a validation photo, or (without ../shared/data) one made with sharp. */
async function aJpeg(seed = 0): Promise<Buffer> {
  if (HAVE_PHOTOS) return readFileSync(photos.val[seed % photos.val.length]);
  const pixels = Buffer.alloc(320 * 240 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * (seed + 7) + (i >> 9)) & 255;
  return sharp(pixels, { raw: { width: 320, height: 240, channels: 3 } })
    .jpeg()
    .toBuffer();
}

// every test below leaves the service running; it must still stop cleanly
const start = useServers({ expectCleanExit: true });
let server: TestServer;
let jpeg: Buffer;

beforeAll(async () => {
  // MAX_QUEUE above the 100 requests sent at once below (test/server/serving.test.ts tests the bound)
  [server, jpeg] = await Promise.all([start({ MAX_QUEUE: '128' }), aJpeg()]);
});

function expectWorkshopBody(body: any, cacheHit: boolean): void {
  expectPredictionBody(body, CLASSES);
  expect(body.cache_hit).toBe(cacheHit);
}

describe('POST /predict', () => {
  it("answers the workshop's body, with the probabilities the library computes for the same photo and text", async () => {
    const res = await predict(server.url, jpeg, 'Image of pizza');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expectWorkshopBody(res.body, false);

    const classifier = await FoodClassifier.load(await readModelFolder(DEFAULT_MODEL_DIR), { device: 'cpu', threads: 1 });
    try {
      const direct = await classifier.predict(jpeg, 'Image of pizza');
      expect(res.body.predictions.map((p: { class_name: string }) => p.class_name)).toEqual(direct.map((p) => p.className.replaceAll('_', ' ')));
      res.body.predictions.forEach((p: { probability: number }, i: number) => {
        expect(p.probability).toBeCloseTo(direct[i].probability, 5);
      });
    } finally {
      await classifier.retire();
    }
  });

  it('reads the text field (the original ignored it): another text, another answer', async () => {
    const image = await aJpeg(3);
    const a = await predict(server.url, image, 'Image of sushi');
    const b = await predict(server.url, image, 'a steak, grilled');
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.predictions.map((p: { probability: number }) => p.probability)).not.toEqual(
      b.body.predictions.map((p: { probability: number }) => p.probability),
    );
  });

  it("without text, or with an empty one, uses the workshop's default 'Image of food'", async () => {
    const image = await aJpeg(5);
    const explicit = await predict(server.url, image, 'Image of food');
    const none = await predict(server.url, image);
    const empty = await predict(server.url, image, '');
    expect(explicit.body.cache_hit).toBe(false);
    // the same cache entry: the same text as far as the model is concerned
    expect(none.body).toEqual({ ...explicit.body, cache_hit: true });
    expect(empty.body).toEqual({ ...explicit.body, cache_hit: true });
  });

  it('a 10,000-character text and a non-ASCII one answer 200', async () => {
    const long = await predict(server.url, jpeg, 'pizza '.repeat(1667).slice(0, 10_000));
    const unicode = await predict(server.url, jpeg, 'Crème brûlée, 寿司 и пицца 🍕');
    expect(long.status).toBe(200);
    expectWorkshopBody(long.body, false);
    expect(unicode.status).toBe(200);
    expectWorkshopBody(unicode.body, false);
  });

  it('accepts PNG and WebP as well as JPEG', async () => {
    const png = await sharp(jpeg).png().toBuffer();
    const webp = await sharp(jpeg).webp().toBuffer();
    for (const [bytes, name] of [
      [png, 'photo.png'],
      [webp, 'photo.webp'],
    ] as const) {
      const res = await predict(server.url, bytes, 'Image of food', name);
      expect(res.status).toBe(200);
      expectWorkshopBody(res.body, false);
    }
  });
});

describe('the prediction cache', () => {
  it('a repeat is a hit with the same body; another text or other bytes are misses; cache_size counts entries', async () => {
    const image = await aJpeg(7);
    const before = (await getJson(server.url, '/system_status')).body.cache_size as number;
    const first = await predict(server.url, image, 'cache test');
    const again = await predict(server.url, image, 'cache test');
    const otherText = await predict(server.url, image, 'cache test 2');
    const otherBytes = await predict(server.url, Buffer.concat([image, Buffer.from([0])]), 'cache test');
    expect(first.body.cache_hit).toBe(false);
    expect(again.body).toEqual({ ...first.body, cache_hit: true });
    expect(otherText.body.cache_hit).toBe(false);
    expect(otherBytes.body.cache_hit).toBe(false);
    const status = (await getJson(server.url, '/system_status')).body;
    expect(status.cache_size).toBe(Math.min(100, before + 3));
    expect(status.prediction_cache.max_size).toBe(100);
  });

  it('a reload invalidates it: the same request is a miss, then a hit again', async () => {
    const image = await aJpeg(9);
    await predict(server.url, image, 'reload test');
    expect((await predict(server.url, image, 'reload test')).body.cache_hit).toBe(true);
    const generation = (await getJson(server.url, '/system_status')).body.model_generation as number;

    const reload = await getJson(server.url, '/reload_model', { method: 'POST' });
    expect(reload).toEqual({ status: 200, body: { status: 'model reloaded', model_generation: generation + 1 } });
    expect((await getJson(server.url, '/system_status')).body.cache_size).toBe(0);

    const after = await predict(server.url, image, 'reload test');
    expect(after.body.cache_hit).toBe(false);
    expect((await predict(server.url, image, 'reload test')).body.cache_hit).toBe(true);
  });
});

describe('GET endpoints', () => {
  it('/health', async () => {
    expect(await getJson(server.url, '/health')).toEqual({ status: 200, body: { status: 'healthy', device: 'cpu' } });
  });

  it('/classes: the raw names, in index order', async () => {
    expect(await getJson(server.url, '/classes')).toEqual({ status: 200, body: { classes: CLASSES } });
  });

  it("/system_status: the workshop's four fields, and more", async () => {
    const { status, body } = await getJson(server.url, '/system_status');
    expect(status).toBe(200);
    expect(body).toMatchObject({ device: 'cpu', model: 'FoodClassifier', num_classes: CLASSES.length });
    expect(Number.isInteger(body.cache_size)).toBe(true);
    expect(body.token_cache.maxSize).toBe(1000);
    // BACKEND=auto on a CPU machine and a folder with the ONNX parts: ONNX Runtime, the text encoder once per text
    expect(body).toMatchObject({
      backend: 'onnx',
      layout: 'parts',
      model_files: ['text_encoder.onnx', 'head.onnx'],
      threads: 2,
      libtorch: null,
      libtorch_version: null,
      batching: { max_batch: 8, max_batch_delay_ms: 0 },
      queue: { max_queue: 128, request_timeout_ms: 30000 },
    });
    expect(body.onnxruntime.version).toMatch(/^\d+\.\d+/);
    expect(body.text_feature_cache).toMatchObject({ max_size: 128, bytes_per_entry: 128 * 64 * 4 });
    expect(body.queue.waiting).toBe(0);
  });

  it('/openapi.json describes every endpoint; /docs serves Swagger UI from this server', async () => {
    const { status, body } = await getJson(server.url, '/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toMatch(/^3\./);
    expect(Object.keys(body.paths).sort()).toEqual(['/classes', '/health', '/metrics', '/predict', '/reload_model', '/system_status']);
    expect(body.paths['/predict'].post.requestBody.content['multipart/form-data'].schema.$ref).toBe('#/components/schemas/Body_predict');
    expect(body.components.schemas.Body_predict.required).toEqual(['image']);

    const page = await fetch(`${server.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    for (const asset of html.matchAll(/(?:src|href)="(\/docs\/[^"]+)"/g)) {
      const res = await fetch(`${server.url}${asset[1]}`);
      expect(res.status, asset[1]).toBe(200);
      expect((await res.arrayBuffer()).byteLength, asset[1]).toBeGreaterThan(0);
    }
  });

  it('the web page at /', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it("unknown paths answer FastAPI's 404, a wrong method its 405", async () => {
    expect(await getJson(server.url, '/nothing-here')).toEqual({ status: 404, body: { detail: 'Not Found' } });
    const res = await fetch(`${server.url}/predict`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await res.json()).toEqual({ detail: 'Method Not Allowed' });
    expect((await getJson(server.url, '/health', { method: 'POST' })).status).toBe(405);
  });

  it('keeps a sane X-Request-Id from the caller and replaces an unsafe one', async () => {
    const kept = await fetch(`${server.url}/health`, { headers: { 'X-Request-Id': 'abc-123' } });
    expect(kept.headers.get('x-request-id')).toBe('abc-123');
    for (const unsafe of ['<script>', 'a b', 'x'.repeat(129)]) {
      const replaced = await fetch(`${server.url}/health`, { headers: { 'X-Request-Id': unsafe } });
      expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    // The request's log line carries the caller's id. The service writes it as the response finishes, so it can
    // reach this process after the answer: awaited, not looked up.
    const line = await server.waitForLog((l) => (l.req as { id?: string } | undefined)?.id === 'abc-123', {
      what: "the log line of the request sent with X-Request-Id 'abc-123'",
    });
    expect(line).toMatchObject({ msg: 'request completed', res: { statusCode: 200 } });
  });
});

describe('bad uploads get a clear 4xx, and the service keeps running', () => {
  const missing = { detail: [{ type: 'missing', loc: ['body', 'image'], msg: 'Field required', input: null }] };

  it("no image: 422, FastAPI's validation body", async () => {
    expect(await predict(server.url, undefined, 'Image of food')).toMatchObject({ status: 422, body: missing });
    const empty = await fetch(`${server.url}/predict`, { method: 'POST' });
    expect(empty.status).toBe(422);
    expect(await empty.json()).toEqual(missing);
  });

  it('the wrong content type (JSON, a urlencoded form): 422', async () => {
    const json = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ image: 'aGVsbG8=', text: 'Image of food' }),
    });
    expect(json.status).toBe(422);
    expect(await json.json()).toEqual(missing);
    const form = await fetch(`${server.url}/predict`, { method: 'POST', body: new URLSearchParams({ text: 'x' }) });
    expect(form.status).toBe(422);
  });

  it('image sent as a text field, or two images: 422 naming the field', async () => {
    const asText = new FormData();
    asText.append('image', 'not a file');
    const res = await fetch(`${server.url}/predict`, { method: 'POST', body: asText });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).detail[0]).toMatchObject({ loc: ['body', 'image'], msg: 'Expected a file upload for image but received a text field' });

    const two = new FormData();
    two.append('image', new Blob([jpeg]), 'a.jpg');
    two.append('image', new Blob([jpeg]), 'b.jpg');
    const twice = await fetch(`${server.url}/predict`, { method: 'POST', body: two });
    expect(twice.status).toBe(422);
    expect(((await twice.json()) as any).detail[0].loc).toEqual(['body', 'image']);
  });

  it('non-image bytes, a truncated JPEG, an empty file, a decompression bomb: 400 with the reason', async () => {
    const cases: [string, Buffer, RegExp][] = [
      ['random bytes', randomBytes(5000), /not a decodable image/],
      ['text', Buffer.from('hello, this is not a photo'), /not a decodable image/],
      ['truncated JPEG', jpeg.subarray(0, Math.floor(jpeg.length / 2)), /truncated|corrupt|decod/i],
      ['empty file', Buffer.alloc(0), /empty/],
      ['decompression bomb (30000x30000 PNG, 110 kB)', pngBomb(30000, 30000), /pixels/],
    ];
    for (const [name, bytes, message] of cases) {
      const res = await predict(server.url, bytes, 'Image of food', 'upload.jpg');
      expect(res.status, name).toBe(400);
      expect(typeof res.body.detail, name).toBe('string');
      expect(res.body.detail, name).toMatch(message);
    }
  });

  it('an upload over MAX_UPLOAD_MB (10 MiB): 413', async () => {
    const res = await predict(server.url, randomBytes(10 * 1024 * 1024 + 1), 'Image of food');
    expect(res.status).toBe(413);
    expect(res.body.detail).toBe('The uploaded file is larger than the limit of 10 MiB (MAX_UPLOAD_MB)');
  });

  it('a text of 64 KiB answers; one byte more: 413 naming the field (128 tokens never need a tenth of it)', async () => {
    const emoji = '🍕'.repeat(16 * 1024); // 4 bytes each: 65,536 bytes of UTF-8
    expect(Buffer.byteLength(emoji)).toBe(64 * 1024);
    const fits = await predict(server.url, jpeg, emoji);
    expect(fits.status).toBe(200);
    expectWorkshopBody(fits.body, false);
    const over = await predict(server.url, jpeg, `${emoji}x`);
    expect(over.status).toBe(413);
    expect(over.body.detail).toBe("The form field 'text' is longer than the limit of 64 KiB (65536 bytes of UTF-8; 128 tokens never need more than 39 KB)");
  });

  it('a multipart body that cannot be parsed: 400', async () => {
    const res = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data; boundary=XYZ' },
      body: '--XYZ\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\nabc',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ detail: 'There was an error parsing the body' });

    const nameless = await fetch(`${server.url}/predict`, {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data; boundary=XYZ' },
      body: '--XYZ\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--XYZ--\r\n',
    });
    expect(nameless.status).toBe(400);
    expect(await nameless.json()).toEqual({ detail: 'The form cannot be read: field name missing' });
  });

  it('after all of them the service is alive and answers as before', async () => {
    expect(server.alive()).toBe(true);
    expect((await getJson(server.url, '/health')).status).toBe(200);
    expect((await predict(server.url, jpeg, 'Image of food')).status).toBe(200);
  });
});

describe('100 predictions at once', () => {
  it('all answer 200 with the answer each gets alone, batched (cache emptied by a reload in between, so all are computed)', async () => {
    const requests = await Promise.all(Array.from({ length: 100 }, async (_, i) => ({ image: await aJpeg(i), text: `concurrent ${i % 7}` })));
    const alone: any[] = [];
    for (const r of requests.slice(0, 100)) alone.push((await predict(server.url, r.image, r.text)).body);
    expect((await getJson(server.url, '/reload_model', { method: 'POST' })).status).toBe(200);

    const together = await Promise.all(requests.map((r) => predict(server.url, r.image, r.text)));
    together.forEach((res, i) => {
      expect(res.status).toBe(200);
      const first = alone.findIndex((_, j) => requests[j].text === requests[i].text && requests[j].image.equals(requests[i].image));
      // the first of identical requests is computed; a repeat may be answered from the cache
      if (first === i) expect(res.body.cache_hit).toBe(false);
      // computed in a batch: the same classes in the same order, the same probabilities within 1e-5
      expect(res.body.predictions.map((p: { class_name: string }) => p.class_name)).toEqual(
        alone[i].predictions.map((p: { class_name: string }) => p.class_name),
      );
      res.body.predictions.forEach((p: { probability: number }, k: number) => {
        expect(Math.abs(p.probability - alone[i].predictions[k].probability)).toBeLessThan(1e-5);
      });
    });
    expect(together.filter((r) => !r.body.cache_hit).length).toBeGreaterThan(50);
  }, 180_000);
});

async function runCurl(line: string): Promise<any> {
  const port = new URL(server.url).port;
  const command = line.replaceAll('localhost:8000', `localhost:${port}`);
  const { stdout } = await run('bash', ['-c', `${command} --silent --show-error`], { cwd: REPO });
  return JSON.parse(stdout);
}

function checkCurlAnswer(line: string, body: any): void {
  if (line.includes('/predict')) expectWorkshopBody(body, body.cache_hit);
  else if (line.includes('/health')) expect(body).toEqual({ status: 'healthy', device: 'cpu' });
  else if (line.includes('/classes')) expect(body).toEqual({ classes: CLASSES });
  else if (line.includes('/system_status')) expect(body).toMatchObject({ device: 'cpu', model: 'FoodClassifier', num_classes: CLASSES.length });
  else if (line.includes('/reload_model')) expect(body).toMatchObject({ status: 'model reloaded' });
  else throw new Error(`unexpected curl line: ${line}`);
}

describe.skipIf(!existsSync(SEED) || !existsSync(SEED_PHOTO))(
  "the seed's curl lines, run with curl (they need ../shared/seed and ../shared/data; skipped when absent)",
  () => {
    it('each answers as the contract says (only the photo path changed)', async () => {
      const lines = curlLines(readFileSync(SEED, 'utf8'));
      expect(lines).toHaveLength(5);
      for (const line of lines) checkCurlAnswer(line, await runCurl(line.replace('@sample/pexels-valeriya-1639557.jpg', `@${SEED_PHOTO}`)));
    });
  },
);

describe.skipIf(!existsSync(SEED_PHOTO))(
  "the curl lines of README.md and docs/*.md, run as written (they use ../shared/data's photo; skipped when absent)",
  () => {
    it('each answers as the contract says', async () => {
      const lines = docs().flatMap((d) => curlLines(d.text));
      expect(lines.length).toBeGreaterThanOrEqual(5);
      for (const line of lines) checkCurlAnswer(line, await runCurl(line));
    });
  },
);
