// How the service computes under load, against real servers (their own processes, the default model, real
// JPEGs): dynamic batching gives each request the answer it gets alone; the text encoder runs once per text;
// the bounded queue answers 503 with Retry-After (full, or waited too long); /metrics; the whole model when a
// folder has no parts; LibTorch's parts; a reload empties the text features.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { metric } from '../helpers/http.js';
import { DEFAULT_MODEL_DIR, getJson, predict, useServers } from '../helpers/server.js';

const server = useServers({ expectCleanExit: true });

/** Distinct small JPEGs: a colour gradient and a pattern that depend on `seed`. */
async function photo(seed: number, width = 320, height = 240): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * (seed + 3) + y) & 255;
      pixels[i + 1] = (y * (seed + 5)) & 255;
      pixels[i + 2] = ((x ^ y) * (seed + 1)) & 255;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

type Answer = { class_name: string; probability: number }[];

function expectSameAnswer(got: Answer, alone: Answer): void {
  expect(got.map((p) => p.class_name)).toEqual(alone.map((p) => p.class_name));
  got.forEach((p, i) => {
    expect(Math.abs(p.probability - alone[i].probability)).toBeLessThan(1e-5);
  });
}

describe('dynamic batching', () => {
  it('groups requests that arrive together into one forward, and each gets the answer it gets alone', async () => {
    // A wait for company of 150 ms makes the grouping certain; the prediction cache is off so all are computed.
    const s = await server({ MAX_BATCH_DELAY_MS: '150', MAX_BATCH: '8', PREDICTION_CACHE_SIZE: '0' });
    const images = await Promise.all(Array.from({ length: 6 }, (_, i) => photo(i)));
    const alone: Answer[] = [];
    for (const image of images) alone.push((await predict(s.url, image, 'Image of food')).body.predictions);
    const forwardsBefore = await metric(s.url, 'inference_batch_size_count{model="head"}');
    const together = await Promise.all(images.map((image) => predict(s.url, image, 'Image of food')));
    const forwards = (await metric(s.url, 'inference_batch_size_count{model="head"}')) - forwardsBefore;
    expect(forwards).toBeLessThan(6);
    expect(forwards).toBeGreaterThanOrEqual(1);
    together.forEach((res, i) => {
      expect(res.status).toBe(200);
      expectSameAnswer(res.body.predictions, alone[i]);
    });
    expect(await metric(s.url, 'inference_batch_size_bucket{le="1",model="head"}')).toBeLessThan(
      await metric(s.url, 'inference_batch_size_count{model="head"}'),
    );
  }, 120_000);

  it('runs the text encoder once per distinct text: later requests with the same text run only the head', async () => {
    const s = await server({ PREDICTION_CACHE_SIZE: '0' });
    const image = await photo(7);
    const before = (await getJson(s.url, '/system_status')).body.text_feature_cache;
    // the default text's features come from the warm-up
    expect(before).toMatchObject({ size: 1, hits: 0, misses: 0 });
    await predict(s.url, image, 'a photo of a dish never seen');
    await predict(s.url, image, 'a photo of a dish never seen');
    await predict(s.url, image, 'A  PHOTO of a dish never seen'); // the same tokens: the same entry
    await predict(s.url, image, 'Image of food');
    const after = (await getJson(s.url, '/system_status')).body.text_feature_cache;
    expect(after).toMatchObject({ size: 2, misses: 1, hits: 3 });
    expect(await metric(s.url, 'inference_forward_seconds_count{model="text_encoder"}')).toBe(1);
    expect(await metric(s.url, 'inference_forward_seconds_count{model="head"}')).toBe(4);
    expect(await metric(s.url, 'cache_hits_total{cache="text_features"}')).toBe(3);
    expect(await metric(s.url, 'cache_misses_total{cache="text_features"}')).toBe(1);
    expect(await metric(s.url, 'cache_entries{cache="text_features"}')).toBe(2);

    // a reload empties it (the new model's default text is known from its warm-up again)
    expect((await getJson(s.url, '/reload_model', { method: 'POST' })).status).toBe(200);
    expect((await getJson(s.url, '/system_status')).body.text_feature_cache).toMatchObject({ size: 1, hits: 0, misses: 0 });
    expect(await metric(s.url, 'model_generation')).toBe(2);
    expect(await metric(s.url, 'model_reloads_total{result="success"}')).toBe(1);
  }, 120_000);
});

describe('reloads', () => {
  it('asked for many at once: one runs, one waits, and the others share the waiting one', async () => {
    const s = await server();
    const before = (await getJson(s.url, '/system_status')).body.model_generation as number;
    const answers = await Promise.all(Array.from({ length: 6 }, () => getJson(s.url, '/reload_model', { method: 'POST' })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const generations = new Set(answers.map((a) => a.body.model_generation as number));
    expect([...generations].sort()).toEqual([before + 1, before + 2]);
    expect((await getJson(s.url, '/system_status')).body.model_generation).toBe(before + 2);
  }, 60_000);
});

describe('the bounded queue', () => {
  it('beyond MAX_QUEUE waiting requests, /predict answers 503 with Retry-After at once', async () => {
    const s = await server({ MAX_QUEUE: '1', MAX_BATCH: '1' });
    // A 36-megapixel RGBA PNG is decoded whole (PIL's alpha semantics: no shrink-on-load, unlike a JPEG), which
    // takes a few hundred ms; once /metrics shows it admitted, the requests sent meanwhile find the queue full.
    const big = await sharp({ create: { width: 6000, height: 6000, channels: 4, background: { r: 90, g: 60, b: 30, alpha: 0.5 } } })
      .png()
      .toBuffer();
    const small = await photo(1);
    const first = predict(s.url, big, 'Image of food', 'big.png');
    let answered = false;
    void first.finally(() => {
      answered = true;
    });
    // No event of the admission reaches the test: /metrics is polled, until the big upload is answered at most.
    while (!answered && (await metric(s.url, 'predict_queue_waiting')) < 1) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(answered, 'the big upload was answered before /metrics showed it waiting').toBe(false);
    const refused = await Promise.all(Array.from({ length: 5 }, () => predict(s.url, small, 'Image of food')));
    for (const res of refused) {
      expect(res.status).toBe(503);
      expect(res.body.detail).toBe('The service is busy: too many requests are waiting for the model (MAX_QUEUE); try again shortly');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect((await first).status).toBe(200);
    // and once it drained, requests are admitted again
    expect((await predict(s.url, small, 'Image of food')).status).toBe(200);
    const status = (await getJson(s.url, '/system_status')).body.queue;
    expect(status).toMatchObject({ waiting: 0, max_queue: 1, rejected: { queue_full: 5, timeout: 0 } });
    expect(await metric(s.url, 'predict_rejected_total{reason="queue_full"}')).toBe(5);
    // a cached answer is still given while the queue has room: it costs no forward
    expect((await predict(s.url, small, 'Image of food')).body.cache_hit).toBe(true);
  }, 120_000);

  it('a request that waited longer than REQUEST_TIMEOUT_MS gets 503 instead of a late answer', async () => {
    const s = await server({ REQUEST_TIMEOUT_MS: '1' });
    const res = await predict(s.url, await photo(2), 'Image of food');
    expect(res.status).toBe(503);
    expect(res.body.detail).toBe('The service is busy: the request waited longer than REQUEST_TIMEOUT_MS for the model; try again shortly');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await getJson(s.url, '/system_status')).body.queue.rejected).toEqual({ queue_full: 0, timeout: 1 });
    expect(await metric(s.url, 'predict_rejected_total{reason="timeout"}')).toBe(1);
    // logged as load shedding (warn), not as an error (the line is written as the answer goes out: awaited)
    const line = await s.waitForLog((l) => (l.res as { statusCode?: number } | undefined)?.statusCode === 503, { what: 'the log line of the 503' });
    expect(line.level).toBe(40);
  }, 60_000);
});

describe('GET /metrics', () => {
  it("Prometheus' text format: requests by route and status, queue, preprocessing and forward times, caches, memory", async () => {
    const s = await server();
    await predict(s.url, await photo(3), 'Image of food');
    await predict(s.url, await photo(3), 'Image of food');
    await fetch(`${s.url}/no/such/path`);
    const res = await fetch(`${s.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds',
      'predict_queue_seconds',
      'predict_preprocess_seconds',
      'inference_queue_seconds',
      'inference_forward_seconds',
      'inference_batch_size',
      'predict_rejected_total',
      'predict_queue_waiting',
      'cache_hits_total',
      'cache_misses_total',
      'cache_entries',
      'model_generation',
      'model_reloads_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(text).toContain('http_requests_total{route="/predict",method="POST",status="200"} 2');
    expect(text).toContain('http_requests_total{route="unmatched",method="GET",status="404"} 1');
    expect(text).toContain('cache_hits_total{cache="predictions"} 1');
    expect(text).toContain('cache_misses_total{cache="predictions"} 1');
    expect(text).toContain('predict_preprocess_seconds_count 1');
    expect(text).toContain('inference_forward_seconds_count{model="head"} 1');
  }, 60_000);
});

describe('the files the service runs', () => {
  it('a folder without the two parts runs the whole model, with the same answers', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'whole-model-'));
    try {
      for (const f of ['best_model.onnx', 'best_model.pth', 'class_mapping.json', 'vocab.txt', 'model.json']) {
        copyFileSync(path.join(DEFAULT_MODEL_DIR, f), path.join(dir, f));
      }
      const [whole, parts] = await Promise.all([server({ MODEL_DIR: dir }), server()]);
      expect((await getJson(whole.url, '/system_status')).body).toMatchObject({
        backend: 'onnx',
        layout: 'whole',
        model_files: ['best_model.onnx'],
        text_feature_cache: null,
      });
      for (const [i, text] of ['Image of food', 'sushi on a plate'].entries()) {
        const image = await photo(10 + i);
        const [a, b] = await Promise.all([predict(whole.url, image, text), predict(parts.url, image, text)]);
        expectSameAnswer(a.body.predictions, b.body.predictions);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('BACKEND=torch runs the TorchScript parts, and says which LibTorch and BLAS kernel', async () => {
    const [torch, onnx] = await Promise.all([server({ BACKEND: 'torch' }), server()]);
    const status = (await getJson(torch.url, '/system_status')).body;
    expect(status).toMatchObject({ backend: 'torch', layout: 'parts', model_files: ['text_encoder.pth', 'head.pth'], onnxruntime: null, threads: 2 });
    expect(status.libtorch.version).toMatch(/^\d+\.\d+/);
    expect(status.libtorch.blas.source).toMatch(/^(environment|measured|library default|not OpenBLAS)$/);
    const image = await photo(20);
    const [a, b] = await Promise.all([predict(torch.url, image, 'Image of pizza'), predict(onnx.url, image, 'Image of pizza')]);
    expectSameAnswer(a.body.predictions, b.body.predictions);
  }, 120_000);
});
