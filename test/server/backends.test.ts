// BACKEND=torch and BACKEND=onnx answer the same through the HTTP API: the same classes in the same order and
// probabilities within 1e-4, on real photos (synthetic JPEGs without ../shared/data).
import { readFileSync } from 'node:fs';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { getJson, predict, type TestServer, useServers } from '../helpers/server.js';
import { sharedPhotos } from '../helpers/torchvision.js';

const photos = sharedPhotos();
const start = useServers({ expectCleanExit: true });
let torch: TestServer;
let onnx: TestServer;
let images: Buffer[];

beforeAll(async () => {
  [torch, onnx] = await Promise.all([start({ BACKEND: 'torch', THREADS: '1' }), start({ BACKEND: 'onnx', THREADS: '1' })]);
  images = photos.val.length
    ? [...photos.samples.slice(0, 2), ...photos.val.filter((_, i) => i % 8 === 0)].map((f) => readFileSync(f))
    : await Promise.all(
        [1, 2, 3].map((k) =>
          sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 40 * k, g: 200 - 50 * k, b: 90 } } })
            .jpeg()
            .toBuffer(),
        ),
      );
});

describe('the two backends through the HTTP API', () => {
  it('/system_status and /health say which backend serves', async () => {
    expect((await getJson(torch.url, '/system_status')).body).toMatchObject({ backend: 'torch', device: 'cpu', model: 'FoodClassifier' });
    expect((await getJson(onnx.url, '/system_status')).body).toMatchObject({ backend: 'onnx', device: 'cpu', model: 'FoodClassifier' });
    expect((await getJson(onnx.url, '/health')).body).toEqual({ status: 'healthy', device: 'cpu' });
    expect((await getJson(onnx.url, '/classes')).body).toEqual((await getJson(torch.url, '/classes')).body);
  });

  it('the same predictions for every image and text', async () => {
    let worst = 0;
    for (const [i, image] of images.entries()) {
      const text = ['Image of food', 'a pizza', 'sushi', 'grilled steak'][i % 4];
      const [a, b] = await Promise.all([predict(torch.url, image, text), predict(onnx.url, image, text)]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect(b.body.predictions.map((p: { class_name: string }) => p.class_name)).toEqual(a.body.predictions.map((p: { class_name: string }) => p.class_name));
      b.body.predictions.forEach((p: { probability: number }, k: number) => {
        const diff = Math.abs(p.probability - a.body.predictions[k].probability);
        worst = Math.max(worst, diff);
        expect(diff).toBeLessThan(1e-4);
      });
    }
    console.log(`[backends] ${images.length} images: max |probability difference| torch vs onnx ${worst.toExponential(2)}`);
  });

  it('the ONNX backend reloads, caches and refuses bad uploads like the LibTorch one', async () => {
    const image = images[0];
    expect((await predict(onnx.url, image, 'cache')).body.cache_hit).toBe(false);
    expect((await predict(onnx.url, image, 'cache')).body.cache_hit).toBe(true);
    expect(await getJson(onnx.url, '/reload_model', { method: 'POST' })).toMatchObject({ status: 200, body: { status: 'model reloaded' } });
    expect((await predict(onnx.url, image, 'cache')).body.cache_hit).toBe(false);
    expect((await predict(onnx.url, Buffer.from('not an image'))).status).toBe(400);
  });

  it('reloads under load on the ONNX backend (two sessions in two workers at once): no failed request', async () => {
    let stop = false;
    const answers: number[] = [];
    const loops = Array.from({ length: 4 }, async (_, k) => {
      for (let i = 0; !stop; i++) answers.push((await predict(onnx.url, images[(k + i) % images.length], `reload load ${k} ${i}`)).status);
    });
    const reloads: number[] = [];
    for (let r = 0; r < 4; r++) {
      const pair = await Promise.all([
        getJson(onnx.url, '/reload_model', { method: 'POST' }),
        r % 2 ? getJson(onnx.url, '/reload_model', { method: 'POST' }) : undefined,
      ]);
      for (const res of pair) if (res) reloads.push(res.status);
    }
    stop = true;
    await Promise.all(loops);
    expect(reloads.every((status) => status === 200)).toBe(true);
    expect(answers.length).toBeGreaterThan(8);
    expect(answers.every((status) => status === 200)).toBe(true);
    expect(onnx.alive()).toBe(true);
    expect((await getJson(onnx.url, '/system_status')).body.model_generation).toBe(2 + reloads.length);
  });

  it('50 predictions at once on the ONNX backend all answer 200', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => predict(onnx.url, images[i % images.length], `many ${i}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
  });
});
