// The service's life, against real running servers (each its own process, the real addon, the default model in
// models/ or a copy of it, real JPEGs): start-up refused with a message that names the fault, configuration from
// a .env file, /reload_model (success, failures that leave the old model serving, reloads under load), graceful
// shutdown on SIGTERM and SIGINT, and the keep-alive timeout. No durations are asserted: time limits are generous.
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { DEFAULT_CLASSES as CLASSES, expectPredictionBody, expectSameAnswer, multipartBody, reload, status } from '../helpers/http.js';
import { largePhoto, smallPhotos, withComment } from '../helpers/photos.js';
import { MODEL_FILES, shutdown, trackProcesses, tryConnect } from '../helpers/processes.js';
import { Progress } from '../helpers/progress.js';
import { rawContinued, rawGet, stalledUpload } from '../helpers/raw-http.js';
import { DEFAULT_MODEL_DIR, getJson, logsSoFar, predict, spawnServer, type TestServer } from '../helpers/server.js';

// Every child started here is killed at the end, whatever a test did.
const tracked = trackProcesses('lifecycle-');
const { tempDir, copyModelDir, serve, runToExit } = tracked;
afterAll(() => tracked.cleanup());

// ---------------------------------------------------------------------------------------------------------------

describe('start-up refused, with a message that names the fault', () => {
  it('an empty model folder: exit 1, stderr names the missing best_model.pth', async () => {
    const empty = tempDir();
    const run = await runToExit({ MODEL_DIR: empty });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Cannot start');
    expect(run.stderr).toContain(path.join(empty, 'best_model.pth'));
    expect(run.stdout).not.toContain('"listening"');
  });

  it('the class mapping missing: exit 1, stderr names class_mapping.json (and not the model, which is there)', async () => {
    const dir = copyModelDir();
    rmSync(path.join(dir, 'class_mapping.json'));
    const run = await runToExit({ MODEL_DIR: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(path.join(dir, 'class_mapping.json'));
    expect(run.stderr).not.toContain('best_model.pth');
  });

  it('a bad configuration value: exit 1, the message names the variable and the value, before any model loads', async () => {
    const cases: [string, string][] = [
      ['PORT', 'abc'],
      ['PORT', '70000'],
      ['DEVICE', 'tpu'],
      ['LOG_LEVEL', 'loud'],
      ['PREDICTION_CACHE_SIZE', '-1'],
      ['KEEP_ALIVE_TIMEOUT', 'soon'],
    ];
    const runs = await Promise.all(cases.map(([name, value]) => runToExit({ [name]: value })));
    runs.forEach((run, i) => {
      const [name, value] = cases[i];
      expect({ name, code: run.code }).toEqual({ name, code: 1 });
      expect(run.stderr).toContain(name);
      expect(run.stderr).toContain(`'${value}'`);
      expect(run.stdout).not.toContain('"listening"');
    });
  });

  it('a device this machine cannot give (cuda:99): exit 1, naming it', async () => {
    const run = await runToExit({ DEVICE: 'cuda:99' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Cannot start');
    expect(run.stderr).toContain('cuda:99');
    expect(run.stdout).not.toContain('"listening"');
  });

  it('--help prints the usage and every variable, and exits 0', async () => {
    const run = await runToExit({}, ['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage');
    for (const name of [
      'PORT',
      'HOST',
      'MODEL_DIR',
      'MODEL_PATH',
      'CLASS_MAPPING_PATH',
      'VOCAB_PATH',
      'DEVICE',
      'THREADS',
      'PREDICTION_CACHE_SIZE',
      'TOKEN_CACHE_SIZE',
      'MAX_UPLOAD_MB',
      'MAX_IMAGE_PIXELS',
      'KEEP_ALIVE_TIMEOUT',
      'SHUTDOWN_TIMEOUT',
      'LOG_LEVEL',
      'ENV_FILE',
    ]) {
      expect(run.stdout).toMatch(new RegExp(`^\\s+${name}\\s`, 'm'));
    }
    expect(run.stdout).toContain('(default: 8000)');
    expect(run.stdout).not.toContain('"listening"');
  });

  it('an unknown argument: exit 2, naming it', async () => {
    const run = await runToExit({}, ['--frobnicate']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Unknown argument: --frobnicate');
    expect(run.stdout).not.toContain('"listening"');
  });

  it('the port already in use: exit 1 with a clear message naming the port', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const run = await runToExit({ PORT: String(port), HOST: '127.0.0.1' });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`Port ${port} is in use`);
      expect(run.stdout).not.toContain('"listening"');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});

describe('configuration from a .env file (ENV_FILE)', () => {
  let envFile: string;
  let fromFile: TestServer;
  let envWins: TestServer;

  beforeAll(async () => {
    envFile = path.join(tempDir(), 'service.env');
    writeFileSync(envFile, '# the service\nPREDICTION_CACHE_SIZE=3\nKEEP_ALIVE_TIMEOUT=7\n');
    [fromFile, envWins] = await Promise.all([
      serve({ ENV_FILE: envFile, PREDICTION_CACHE_SIZE: undefined, KEEP_ALIVE_TIMEOUT: undefined }),
      serve({ ENV_FILE: envFile, PREDICTION_CACHE_SIZE: '5', KEEP_ALIVE_TIMEOUT: undefined }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([shutdown(fromFile), shutdown(envWins)]);
  });

  it("the file's values are used (and the service logs which file it read)", async () => {
    const listening = fromFile.logs.find((l) => l.msg === 'listening')!;
    expect(listening.env_file).toBe(envFile);
    expect((await status(fromFile.url)).prediction_cache.max_size).toBe(3);
    const { headers, socket } = await rawGet(fromFile.url, '/health');
    socket.destroy();
    expect(headers['keep-alive']).toBe('timeout=7');
  });

  it('the cache really holds 3: four different predictions leave 3 entries', async () => {
    const images = await smallPhotos(4);
    for (const [i, image] of images.entries()) {
      const res = await predict(fromFile.url, image, `env file ${i}`);
      expect(res.status).toBe(200);
      expect(res.body.cache_hit).toBe(false);
    }
    const after = await status(fromFile.url);
    expect(after.cache_size).toBe(3);
    expect(after.prediction_cache.size).toBe(3);
    // the first was evicted (least recently used), the last is still there
    expect((await predict(fromFile.url, images[3], 'env file 3')).body.cache_hit).toBe(true);
    expect((await predict(fromFile.url, images[0], 'env file 0')).body.cache_hit).toBe(false);
  });

  it("an explicit environment variable wins over the file's value; the file's other values still apply", async () => {
    expect((await status(envWins.url)).prediction_cache.max_size).toBe(5);
    const { headers, socket } = await rawGet(envWins.url, '/health');
    socket.destroy();
    expect(headers['keep-alive']).toBe('timeout=7');
  });

  it('ENV_FILE naming a missing file: exit 1, naming it', async () => {
    const missing = path.join(tempDir(), 'nowhere.env');
    const run = await runToExit({ ENV_FILE: missing });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(missing);
    expect(run.stdout).not.toContain('"listening"');
  });

  it('a bad value in the file: exit 1, naming the variable and the value', async () => {
    const file = path.join(tempDir(), 'bad.env');
    writeFileSync(file, 'DEVICE=tpu\n');
    const run = await runToExit({ ENV_FILE: file, DEVICE: undefined });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('DEVICE');
    expect(run.stderr).toContain("'tpu'");
  });
});

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
    console.info(`[lifecycle.test] under load: ${answers.length} predictions (${hits} cache hits, ${stale} computed before the last reload)`);
    // nothing logged at error level (50) or above, e.g. a retired model that failed to free
    const errors = server.logs.slice(logsBefore).filter((l) => (l.level as number) >= 50);
    expect(errors).toEqual([]);
  }, 180_000);
});

describe('graceful shutdown', () => {
  it('SIGTERM with predictions in flight: all answer 200, new connections are refused, exit 0', async () => {
    const [server, large] = await Promise.all([serve(), largePhoto()]);
    try {
      const baseline = (await status(server.url)).prediction_cache.misses;
      // slow-ish predictions (a large JPEG, distinct texts: all computed)...
      const count = 3;
      const answered: boolean[] = Array(count).fill(false);
      const inFlight = Array.from({ length: count }, (_, i) =>
        predict(server.url, large, `shutdown ${i}`).then((res) => {
          answered[i] = true;
          return res;
        }),
      );
      // ...and two whose upload is not even finished when the signal comes (in flight by construction)
      const uploads = [stalledUpload(server.url, large, 'shutdown stalled 0'), stalledUpload(server.url, large, 'shutdown stalled 1')];
      await Promise.all(uploads.map((u) => u.started));
      for (const u of uploads) u.sendHalf();
      // wait until the server has the complete ones (each counted as a cache miss once its upload is parsed)
      for (;;) {
        const { misses } = (await status(server.url)).prediction_cache;
        if (misses >= baseline + count || answered.every(Boolean)) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const answeredAtSignal = answered.filter(Boolean).length;

      server.child.kill('SIGTERM');
      await server.waitForLog((l) => l.msg === 'shutting down: finishing the requests in flight');
      // The listener closes right after that line is written: no event of it reaches the test, so it is polled.
      await vi.waitFor(async () => expect(await tryConnect(server.url)).toBe('ECONNREFUSED'), { timeout: 10_000, interval: 20 });
      expect(server.alive()).toBe(true);

      for (const u of uploads) u.finish();
      const results = await Promise.all([...inFlight, ...uploads.map((u) => u.response)]);
      for (const res of results) {
        expect(res.status).toBe(200);
        expectPredictionBody(res.body);
        expect(res.body.cache_hit).toBe(false);
      }
      expect(await server.exited).toEqual({ code: 0, signal: null });
      expect(server.logs.find((l) => l.msg === 'stopped')).toMatchObject({ finished: true });
      // for the record: how many of the complete uploads had already been answered when the signal came
      console.info(`[lifecycle.test] SIGTERM: ${count - answeredAtSignal} of ${count} complete predictions and 2 partial uploads in flight`);
    } finally {
      await shutdown(server);
    }
  }, 120_000);

  // BUG (src/server/server.ts, stop()): the 'request' listener that stop() adds calls res.setHeader('Connection',
  // 'close') after Express's own listener, which has already answered a synchronous route (/health, /classes,
  // /system_status, a 404): ERR_HTTP_HEADERS_SENT is thrown from the listener, uncaught, and the process dies (exit 1)
  // in the middle of its graceful shutdown, cutting the predictions still in flight. Any keep-alive client (a load
  // balancer's health check, say) that sends a request on its open connection after the signal triggers it.
  // Made deterministic here with one connection: a prediction whose upload is half sent when SIGTERM comes (in
  // flight for sure: the server has answered `100 Continue`), then the rest of it and, pipelined, GET /health.
  it('a request sent on an open connection after SIGTERM is answered (Connection: close), the prediction before it too; exit 0', async () => {
    const [server, [image]] = await Promise.all([serve(), smallPhotos(1)]);
    try {
      const { host } = new URL(server.url);
      const { body, contentType } = multipartBody(image, 'in flight while /health comes');
      const half = Math.floor(body.length / 2);
      const { socket, received, closed } = await rawContinued(
        server.url,
        `POST /predict HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
      );
      socket.write(body.subarray(0, half));
      server.child.kill('SIGTERM');
      await server.waitForLog((l) => l.msg === 'shutting down: finishing the requests in flight');
      socket.write(Buffer.concat([body.subarray(half), Buffer.from(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`)]));
      await closed;
      const exit = await server.exited;
      expect(server.stderr()).not.toContain('ERR_HTTP_HEADERS_SENT');
      const responses = received()
        .toString('utf8')
        .split(/(?=HTTP\/1\.1 )/);
      expect(responses).toHaveLength(2);
      expect(responses[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expectPredictionBody(JSON.parse(responses[0].slice(responses[0].indexOf('\r\n\r\n') + 4)));
      expect(responses[1]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(responses[1]).toContain('{"status":"healthy","device":"cpu"}');
      // the answer tells the keep-alive client to go away, as stop() means it to
      expect(responses[1]).toMatch(/\r\nConnection: close\r\n/i);
      expect(exit).toEqual({ code: 0, signal: null });
    } finally {
      await shutdown(server);
    }
  }, 60_000);

  // BUG (src/server/main.ts): the 'listening' line is logged before the SIGTERM and SIGINT handlers are installed,
  // so a supervisor that stops the service as soon as it reports ready kills it with the default action (no
  // graceful stop, exit by signal) - while it already listens, so a request may already be in flight.
  // A race, so tried up to four times (one after another, stopping at the first loss): each server is signalled
  // the instant its 'listening' line arrives. Before a fix most tries lose the signal; after one, none can.
  it('SIGTERM the moment it logs listening: a graceful stop, exit 0', async () => {
    const attempt = (): Promise<{ code: number | null; signal: NodeJS.Signals | null; stopped: boolean }> => {
      const child = tracked.track(spawnServer());
      let stdout = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        const before = stdout;
        stdout += chunk;
        if (!before.includes('"msg":"listening"') && stdout.includes('"msg":"listening"')) child.kill('SIGTERM');
      });
      return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stopped: stdout.includes('"msg":"stopped"') })));
    };
    for (let i = 0; i < 4; i++) {
      expect({ try: i + 1, ...(await attempt()) }).toEqual({ try: i + 1, code: 0, signal: null, stopped: true });
    }
  }, 90_000);

  it('SIGINT when idle: exit 0', async () => {
    const server = await serve();
    expect((await getJson(server.url, '/health')).status).toBe(200);
    expect(await server.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(server.logs.find((l) => l.msg === 'shutting down: finishing the requests in flight')).toMatchObject({ signal: 'SIGINT' });
    expect(server.logs.find((l) => l.msg === 'stopped')).toMatchObject({ finished: true });
  }, 60_000);

  it('a request still running at SHUTDOWN_TIMEOUT is cut, and the exit code says so (1)', async () => {
    const [server, [image]] = await Promise.all([serve({ SHUTDOWN_TIMEOUT: '1' }), smallPhotos(1)]);
    try {
      const upload = stalledUpload(server.url, image, 'never finished');
      await upload.started;
      upload.sendHalf();
      server.child.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 1, signal: null });
      await expect(upload.response).rejects.toThrow();
      expect(server.logs.find((l) => l.msg === 'stopped: requests still running at SHUTDOWN_TIMEOUT were cut')).toMatchObject({ finished: false });
    } finally {
      await shutdown(server);
    }
  }, 60_000);

  it('a second signal while waiting for requests in flight exits at once (1)', async () => {
    const [server, [image]] = await Promise.all([serve(), smallPhotos(1)]);
    try {
      const upload = stalledUpload(server.url, image, 'never finished either');
      await upload.started;
      upload.sendHalf();
      server.child.kill('SIGTERM');
      await server.waitForLog((l) => l.msg === 'shutting down: finishing the requests in flight');
      expect(server.alive()).toBe(true);
      server.child.kill('SIGINT');
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expect(server.logs.find((l) => l.msg === 'second signal: exiting now')).toMatchObject({ signal: 'SIGINT' });
      await expect(upload.response).rejects.toThrow();
    } finally {
      await shutdown(server);
    }
  }, 60_000);
});

describe('keep-alive timeout', () => {
  let byDefault: TestServer;
  let five: TestServer;

  beforeAll(async () => {
    [byDefault, five] = await Promise.all([serve({ KEEP_ALIVE_TIMEOUT: undefined }), serve({ KEEP_ALIVE_TIMEOUT: '5' })]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([shutdown(byDefault), shutdown(five)]);
  });

  it('by default a response carries Keep-Alive: timeout=30 (as uvicorn --timeout-keep-alive 30)', async () => {
    const { statusLine, headers, socket } = await rawGet(byDefault.url, '/health');
    socket.destroy();
    expect(statusLine).toBe('HTTP/1.1 200 OK');
    expect(headers.connection).toBe('keep-alive');
    expect(headers['keep-alive']).toBe('timeout=30');
  });

  it('with KEEP_ALIVE_TIMEOUT=5: timeout=5, and the server closes the idle connection itself', async () => {
    const { statusLine, headers, closed } = await rawGet(five.url, '/health');
    expect(statusLine).toBe('HTTP/1.1 200 OK');
    expect(headers['keep-alive']).toBe('timeout=5');
    await closed; // the test's time limit is the bound; the server must close it without the client's help
  }, 60_000);
});
