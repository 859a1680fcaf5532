// The service's start-up and configuration, against real running servers (each its own process, the real addon,
// the default model in models/ or a copy of it, real JPEGs): start-up refused with a message that names the fault,
// configuration from a .env file, and the keep-alive timeout. No durations are asserted: time limits are generous.
// /reload_model is in lifecycle.reload.test.ts, graceful shutdown in lifecycle.shutdown.test.ts.
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { status } from '../helpers/http.js';
import { smallPhotos } from '../helpers/photos.js';
import { shutdown, trackProcesses } from '../helpers/processes.js';
import { rawGet } from '../helpers/raw-http.js';
import { predict, type TestServer } from '../helpers/server.js';

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
