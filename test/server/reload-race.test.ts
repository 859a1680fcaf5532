// A reload while a request waits for the prediction cache, made to happen every time (in-process: the real app,
// the real default model, a cache whose lookup waits until the test lets it go). The request took its model
// before the wait; the reload replaces and retires that model meanwhile; the request must still be answered
// (by the model it took), not fail with 500 (ERR_MODEL_DISPOSED), as it did before requests held their model.
// `npm run soak` found it: 3 answers of 57350 over 10 minutes with a reload every 15 s.
import type { Server } from 'node:http';

import pino from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/server/config.js';
import { ModelManager } from '../../src/server/model-manager.js';
import { type CachedPrediction, MemoryPredictionCache } from '../../src/server/prediction-cache.js';
import { listenInProcess } from '../helpers/in-process-app.js';
import { DEFAULT_MODEL_DIR, REPO } from '../helpers/server.js';

/** A memory cache whose lookups wait for `release()` while `hold()` is in force. */
class GatedCache extends MemoryPredictionCache {
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  #entered: (() => void) | undefined;

  /** Lookups wait from now; resolves when the first one has started waiting. */
  hold(): Promise<void> {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
    return new Promise((resolve) => {
      this.#entered = resolve;
    });
  }

  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  override async get(key: string): Promise<CachedPrediction[] | undefined> {
    this.#entered?.();
    await this.#gate;
    return super.get(key);
  }
}

let server: Server;
let url: string;
let models: ModelManager;
const cache = new GatedCache(100, 0);

beforeAll(async () => {
  const config = loadConfig({ MODEL_DIR: DEFAULT_MODEL_DIR, THREADS: '1', ENV_FILE: '/dev/null' }, REPO);
  const logger = pino({ level: 'silent' });
  models = await ModelManager.load(config, logger);
  ({ server, url } = await listenInProcess(config, models, { cache, logger }));
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await models?.close();
});

describe('a reload while a request waits for the cache', () => {
  it('the request is answered 200', async () => {
    const form = new FormData();
    const photo = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 60, b: 40 } } })
      .jpeg()
      .toBuffer();
    form.append('image', new Blob([photo]), 'photo.jpg');
    const waiting = cache.hold();
    const response = fetch(`${url}/predict`, { method: 'POST', body: form });
    await waiting;
    const before = models.generation;
    await models.reload();
    expect(models.generation).toBe(before + 1);
    cache.release();
    const res = await response;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { predictions: { class_name: string }[]; cache_hit: boolean };
    expect(body.predictions.length).toBeGreaterThan(0);
    expect(body.cache_hit).toBe(false);
  });
});
