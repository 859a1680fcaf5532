// POST /reload_model against a real running server (its own process, the real addon, a copy of the default model
// in models/, real JPEGs): success, failures that leave the old model serving, a renamed class, and reloads under
// load. No durations are asserted: time limits are generous. Start-up and configuration are in
// lifecycle.config.test.ts, graceful shutdown in lifecycle.shutdown.test.ts.
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEFAULT_CLASSES as CLASSES, expectPredictionBody, expectSameAnswer, reload, status } from '../helpers/http.js';
import { smallPhotos, withComment } from '../helpers/photos.js';
import { MODEL_FILES, shutdown, trackProcesses } from '../helpers/processes.js';
import { Progress } from '../helpers/progress.js';
import { DEFAULT_MODEL_DIR, getJson, logsSoFar, predict, type TestServer } from '../helpers/server.js';

// Every child started here is killed at the end, whatever a test did.
const tracked = trackProcesses('lifecycle-');
const { copyModelDir, serve } = tracked;
afterAll(() => tracked.cleanup());

// ---------------------------------------------------------------------------------------------------------------

describe('POST /reload_model, on a copy of the model folder', () => {
  let dir: string;
  let server: TestServer;
  let image: Buffer;

  const file = (name: string): string => path.join(dir, name);
  /** Puts the default model's files back. */
  const restore = (): void => {
    for (const name of MODEL_FILES) copyFileSync(path.join(DEFAULT_MODEL_DIR, name), file(name));
  };
  const writeMapping = (classes: string[]): void => {
    writeFileSync(file('class_mapping.json'), JSON.stringify(Object.fromEntries(classes.map((c, i) => [c, i]))));
  };
  /**
   * model.json as the exporter writes it, with `classes` (and num_classes) changed, and the SHA-256 and size of
   * the folder's class mapping as it is now (model.json records every file's, checked at each load).
   */
  const writeMetadataClasses = (classes: string[]): void => {
    const metadata = JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, 'model.json'), 'utf8')) as { files: Record<string, unknown> };
    const mapping = readFileSync(file('class_mapping.json'));
    const files = { ...metadata.files, 'class_mapping.json': { sha256: createHash('sha256').update(mapping).digest('hex'), bytes: mapping.length } };
    writeFileSync(file('model.json'), JSON.stringify({ ...metadata, classes, num_classes: classes.length, files }, null, 2));
  };

  beforeAll(async () => {
    dir = copyModelDir();
    [server, [image]] = await Promise.all([serve({ MODEL_DIR: dir }), smallPhotos(1)]);
  }, 120_000);

  afterAll(async () => {
    await shutdown(server);
  });

  it('succeeds: 200, the generation goes up, the cache is emptied: a prediction cached before is a miss, then a hit', async () => {
    const before = await status(server.url);
    const first = await predict(server.url, image, 'reload a');
    expect(first.status).toBe(200);
    expectPredictionBody(first.body);
    expect(first.body.cache_hit).toBe(false);
    expect((await predict(server.url, image, 'reload a')).body.cache_hit).toBe(true);

    const res = await reload(server.url);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('model reloaded');
    expect(res.body.model_generation).toBe(before.model_generation + 1);
    const after = await status(server.url);
    expect(after.model_generation).toBe(before.model_generation + 1);
    expect(after.cache_size).toBe(0);

    const miss = await predict(server.url, image, 'reload a');
    expect(miss.status).toBe(200);
    expect(miss.body.cache_hit).toBe(false);
    expectSameAnswer(first.body.predictions, miss.body.predictions);
    const hit = await predict(server.url, image, 'reload a');
    expect(hit.body).toEqual({ predictions: miss.body.predictions, cache_hit: true });
  });

  it('a corrupt or truncated model file: 500 saying why; the old model keeps answering the same; restored, the reload succeeds', async () => {
    const before = await predict(server.url, image, 'reload b');
    expect(before.status).toBe(200);
    const { model_generation: generation } = await status(server.url);
    try {
      const garbage = Buffer.alloc(64 * 1024);
      for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 2654435761) >>> 24;
      writeFileSync(file('best_model.pth'), garbage);
      const since = server.logs.length;
      const corrupt = await reload(server.url);
      expect(corrupt.status).toBe(500);
      expect(Object.keys(corrupt.body)).toEqual(['detail']);
      // the file by its name in the folder, what is wrong with it; never the server's paths (they go to the log)
      expect(corrupt.body.detail).toMatch(
        /^Reload failed: best_model\.pth is (not a TorchScript model|truncated or corrupt); the current model keeps serving$/,
      );
      expect(corrupt.body.detail).not.toContain(dir);
      // The request's log line (written as the answer went out: awaited) has the full reason.
      const failed = await server.waitForLog((l) => (l.res as { statusCode?: number } | undefined)?.statusCode === 500, {
        since,
        what: 'the log line of the failed reload (500)',
      });
      expect(JSON.stringify(failed)).toContain(file('best_model.pth'));

      restore();
      truncateSync(file('best_model.pth'), Math.floor(readFileSync(path.join(DEFAULT_MODEL_DIR, 'best_model.pth')).length / 2));
      const truncated = await reload(server.url);
      expect(truncated.status).toBe(500);
      expect(truncated.body.detail).toBe('Reload failed: best_model.pth is truncated or corrupt; the current model keeps serving');

      expect((await status(server.url)).model_generation).toBe(generation);
      // the old model computes (other bytes, same pixels: not from the cache) the same answer as before
      for (const tag of ['one', 'two']) {
        const again = await predict(server.url, withComment(image, tag), 'reload b');
        expect(again.status).toBe(200);
        expectPredictionBody(again.body);
        expect(again.body.cache_hit).toBe(false);
        expectSameAnswer(before.body.predictions, again.body.predictions);
      }
      // and what was cached before the failed reload is still a hit (a failed reload leaves the cache alone)
      expect((await predict(server.url, image, 'reload b')).body.cache_hit).toBe(true);
    } finally {
      restore();
    }
    const ok = await reload(server.url);
    expect(ok.status).toBe(200);
    expect(ok.body.model_generation).toBe(generation + 1);
  });

  it('a class mapping with another number of classes than the model has: 500 (ERR_MODEL_MISMATCH); the old model serves on', async () => {
    const before = await status(server.url);
    const more = [...CLASSES, 'ramen'];
    try {
      // model.json updated too, so that the model itself is asked (its logits have 3 classes, not 4)
      writeMapping(more);
      writeMetadataClasses(more);
      const res = await reload(server.url);
      expect(res.status).toBe(500);
      expect(res.body.detail).toBe(
        'Reload failed: best_model.pth does not match the class mapping (or the other part of the model); the current model keeps serving',
      );

      // with model.json left as exported, the folder check catches it first, naming the class mapping
      restore();
      writeMapping(CLASSES.slice(0, -1));
      const res2 = await reload(server.url);
      expect(res2.status).toBe(500);
      expect(res2.body.detail).toBe(
        'Reload failed: class_mapping.json is invalid: its classes differ from those the model was exported with (model.json): the class mapping belongs to another model',
      );

      // a class mapping that is not JSON; a missing vocabulary
      writeFileSync(file('class_mapping.json'), '{"pizza": 0,');
      const res3 = await reload(server.url);
      expect(res3.status).toBe(500);
      expect(res3.body.detail).toMatch(/^Reload failed: class_mapping\.json is invalid: it is not valid JSON/);
      expect(res3.body.detail).not.toContain(dir);
      restore();
      rmSync(file('vocab.txt'));
      const res4 = await reload(server.url);
      expect(res4.status).toBe(500);
      expect(res4.body.detail).toBe('Reload failed: vocab.txt is missing; the current model keeps serving');

      const after = await status(server.url);
      expect(after.model_generation).toBe(before.model_generation);
      expect(after.num_classes).toBe(CLASSES.length);
      expect((await getJson(server.url, '/classes')).body).toEqual({ classes: CLASSES });
      const res5 = await predict(server.url, withComment(image, 'mismatch'), 'reload c');
      expect(res5.status).toBe(200);
      expectPredictionBody(res5.body);
    } finally {
      restore();
    }
  });

  it('a class renamed (same count): 200, and /classes and /predict use the new name', async () => {
    const renamed = [...CLASSES.slice(0, -1), 'raw_fish'];
    const before = await predict(server.url, withComment(image, 'rename before'), 'reload d');
    try {
      writeMapping(renamed);
      writeMetadataClasses(renamed);
      const res = await reload(server.url);
      expect(res.status).toBe(200);
      expect((await getJson(server.url, '/classes')).body).toEqual({ classes: renamed });
      const after = await predict(server.url, withComment(image, 'rename after'), 'reload d');
      expect(after.status).toBe(200);
      expectPredictionBody(after.body, renamed);
      const names = after.body.predictions.map((p: { class_name: string }) => p.class_name);
      expect(names).toContain('raw fish');
      expect(names).not.toContain(CLASSES.at(-1)!.replaceAll('_', ' '));
      // the same model: the same probabilities, under the new name
      const rename = (name: string): string => (name === CLASSES.at(-1)!.replaceAll('_', ' ') ? 'raw fish' : name);
      expect(names).toEqual(before.body.predictions.map((p: { class_name: string }) => rename(p.class_name)));
    } finally {
      restore();
    }
    expect((await reload(server.url)).status).toBe(200);
    expect((await getJson(server.url, '/classes')).body).toEqual({ classes: CLASSES });
  });

  it('reloads under load: 8 prediction loops and 5 reloads (some at once): every answer 200 and valid, and the service lives on', async () => {
    const images = await smallPhotos(6);
    const generation = (await status(server.url)).model_generation;
    const logsBefore = server.logs.length;
    let running = true;
    const answers: { key: string; status: number; body: any }[] = [];
    const progress = new Progress();
    const loops = Array.from({ length: 8 }, async (_, loop) => {
      for (let n = 0; running || n < 3; n++) {
        // every fourth request repeats the one three before it (a likely cache hit); the others are new texts
        const m = n % 4 === 3 ? n - 3 : n;
        const text = `load loop ${loop} request ${m}`;
        const key = `${(loop + m) % images.length} ${text}`;
        const res = await predict(server.url, images[(loop + m) % images.length], text);
        answers.push({ key, status: res.status, body: res.body });
        progress.changed();
      }
    });
    const reloads: { status: number; body: any }[] = [];
    // Paced by the answers, not by the clock: each reload starts while the 8 loops have requests in flight, and
    // the loops run on until a few rounds of answers have come after the last one.
    const moreAnswers = (more: number, what: string): Promise<void> => {
      const target = answers.length + more;
      return progress.until(() => answers.length >= target, `${more} more answers ${what}`);
    };
    const reloading = (async () => {
      await moreAnswers(8, 'before the first reloads');
      reloads.push(...(await Promise.all([reload(server.url), reload(server.url)])));
      await moreAnswers(8, 'after the first two reloads');
      reloads.push(await reload(server.url));
      await moreAnswers(8, 'after the third reload');
      reloads.push(...(await Promise.all([reload(server.url), reload(server.url)])));
      await moreAnswers(24, 'after the last reloads');
      running = false;
    })();
    await Promise.all([reloading, ...loops]);

    expect(reloads.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const generations = reloads.map((r) => r.body.model_generation).sort((a, b) => a - b);
    expect(generations).toEqual([1, 2, 3, 4, 5].map((i) => generation + i));
    expect(answers.length).toBeGreaterThanOrEqual(8 * 3);
    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expectPredictionBody(answer.body);
    }
    // the same model file throughout: every answer to one image and text is the same, computed or cached
    const byKey = new Map<string, any[]>();
    for (const { key, body } of answers) {
      if (!byKey.has(key)) byKey.set(key, body.predictions);
      else expectSameAnswer(byKey.get(key)!, body.predictions);
    }

    expect(server.alive()).toBe(true);
    expect((await getJson(server.url, '/health')).body).toEqual({ status: 'healthy', device: 'cpu' });
    expect((await status(server.url)).model_generation).toBe(generation + 5);
    const hits = answers.filter((a) => a.body.cache_hit).length;
    // every line logged up to now, the last predictions' included
    await logsSoFar(server);
    const stale = server.logs.slice(logsBefore).filter((l) => l.cache_hit === false && (l.generation as number) < generation + 5).length;
    console.info(`[lifecycle.reload.test] under load: ${answers.length} predictions (${hits} cache hits, ${stale} computed before the last reload)`);
    // nothing logged at error level (50) or above, e.g. a retired model that failed to free
    const errors = server.logs.slice(logsBefore).filter((l) => (l.level as number) >= 50);
    expect(errors).toEqual([]);
  }, 180_000);
});
