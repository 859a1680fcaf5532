// A fleet, run here: Debian's nginx (deploy/nginx/nginx.conf) with HTTPS (a certificate made by the test) in front
// of two instances of the service that share one Redis and one model folder. Under load:
//   1. SIGKILL of one instance loses no request (nginx sends what failed to the other: predictions have no side
//      effects);
//   2. a rolling model update (new files in the folder, then POST /reload_model on each instance in turn) loses
//      none either, and no instance answers from the old model once its reload has returned (its Redis entries
//      are keyed by the model's content).
// Bounded: about a minute. Skipped, saying why, where nginx, redis-server or openssl is missing.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { Progress } from '../helpers/progress.js';
import { freePort, HAVE_REDIS, startRedis, type TestRedis } from '../helpers/redis.js';
import { multipartBody } from '../helpers/http.js';
import { type RawAnswer, rawRequest } from '../helpers/raw-http.js';
import { DEFAULT_MODEL_DIR, REPO, startServer, type TestServer } from '../helpers/server.js';

const HAVE_NGINX = spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0;
const HAVE_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const READY = HAVE_NGINX && HAVE_REDIS && HAVE_OPENSSL;
if (!READY) console.warn('[fleet.test] nginx, redis-server or openssl is missing (scripts/setup.sh installs them): the fleet is not tested');

let work: string;
let modelDir: string;
let redis: TestRedis;
let nginx: ChildProcess;
let nginxUrl: string;
const instances: { port: number; server: TestServer }[] = [];
let photos: Buffer[] = [];

/** One instance of the service on `port`, sharing the model folder and Redis. */
async function instance(port: number): Promise<TestServer> {
  // CACHE_SECRET: required with REDIS_URL, the same for every instance (they share answers)
  return startServer(
    { PORT: String(port), MODEL_DIR: modelDir, REDIS_URL: redis.url, CACHE_SECRET: 'fleet-test-secret-0123456789abcdef01234567', ALLOWED_HOSTS: 'localhost' },
    REPO,
  );
}

/** deploy/nginx/nginx.conf with the lines marked "test:" pointed at this test's ports, certificate and files. */
function nginxConfig(port: number, upstreams: number[], cert: string, key: string): string {
  let conf = readFileSync(path.join(REPO, 'deploy', 'nginx', 'nginx.conf'), 'utf8');
  const replace = (marker: string, line: (indent: string) => string) => {
    const re = new RegExp(`^(\\s*)[^\\n]*# test: ${marker}\\n`, 'm');
    expect(conf, marker).toMatch(re);
    conf = conf.replace(re, (_m, indent: string) => line(indent));
  };
  replace('pid', (i) => `${i}pid ${work}/nginx.pid;\n`);
  replace('error_log', (i) => `${i}error_log ${work}/error.log warn;\n`);
  replace('access_log', (i) =>
    [`access_log ${work}/access.log;`, ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${work}/${t};`)]
      .map((l) => `${i}${l}\n`)
      .join(''),
  );
  // one upstream line for each instance (the config's two lines become this test's)
  const upstreamLine = /^(\s*)server 127\.0\.0\.1:\d+ ([^;]*);\s*# test: upstream\n/gm;
  const first = upstreamLine.exec(conf)!;
  conf = conf.replace(upstreamLine, '');
  conf = conf.replace(/(upstream food_classifier \{\n)/, `$1${upstreams.map((p) => `${first[1]}server 127.0.0.1:${p} ${first[2]};\n`).join('')}`);
  replace('listen', (i) => `${i}listen 127.0.0.1:${port} ssl http2;\n`);
  replace('certificate', (i) => `${i}ssl_certificate ${cert};\n`);
  replace('key', (i) => `${i}ssl_certificate_key ${key};\n`);
  return conf;
}

beforeAll(async () => {
  if (!READY) return;
  work = mkdtempSync(path.join(tmpdir(), 'fleet-'));
  modelDir = path.join(work, 'model');
  mkdirSync(modelDir);
  for (const f of readdirSync(DEFAULT_MODEL_DIR)) copyFileSync(path.join(DEFAULT_MODEL_DIR, f), path.join(modelDir, f));
  redis = await startRedis();
  const ports = [await freePort(), await freePort()];
  for (const port of ports) instances.push({ port, server: await instance(port) });

  const cert = path.join(work, 'cert.pem');
  const key = path.join(work, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
    stdio: 'ignore',
  });
  const port = await freePort();
  writeFileSync(path.join(work, 'nginx.conf'), nginxConfig(port, ports, cert, key));
  execFileSync('nginx', ['-t', '-p', work, '-c', path.join(work, 'nginx.conf')], { stdio: 'pipe' });
  nginx = spawn('nginx', ['-p', work, '-c', path.join(work, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  nginxUrl = `https://localhost:${port}`;
  // nginx says nothing when it is ready (its output is not read): /health through it is polled, within a bound.
  await vi.waitFor(
    async () => {
      if (nginx.exitCode !== null) throw new Error(`nginx exited (${nginx.exitCode}): see ${work}/error.log`);
      expect((await rawRequest(nginxUrl, { path: '/health' })).status).toBe(200);
    },
    { timeout: 30_000, interval: 100 },
  );
  photos = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      sharp({ create: { width: 320, height: 240, channels: 3, background: { r: (i * 41) % 256, g: (i * 67) % 256, b: (i * 13) % 256 } } })
        .jpeg()
        .toBuffer(),
    ),
  );
}, 120_000);

afterAll(async () => {
  if (!READY) return;
  nginx?.kill('SIGQUIT');
  for (const { server } of instances) if (server.alive()) await server.stop();
  await redis?.kill();
  rmSync(work, { recursive: true, force: true });
});

interface Answer {
  status: number;
  upstream: string;
  started: number;
  classes: string[];
}

interface Load {
  /** The answers so far, in the order they came. */
  answers: Answer[];
  /** Resolves once `condition(answers)` holds (checked as each answer comes); rejects after 60 s, naming `what`. */
  until(condition: (answers: Answer[]) => boolean, what: string): Promise<void>;
  /** Stops the clients and resolves, once every request in flight has been answered, with all the answers. */
  stop(): Promise<Answer[]>;
}

/** `loops` clients posting distinct photos through nginx until stopped. */
function startLoad(loops: number): Load {
  const answers: Answer[] = [];
  const progress = new Progress();
  let stopped = false;
  let n = 0;
  const running = Promise.all(
    Array.from({ length: loops }, async () => {
      while (!stopped) {
        const i = n++;
        // a distinct upload each time (a byte after the JPEG's end): every answer is computed or shared via Redis
        const image = Buffer.concat([photos[i % photos.length], Buffer.from(`${i}`)]);
        const { body, contentType } = multipartBody(image, 'Image of food');
        const started = performance.now();
        const res = await rawRequest(nginxUrl, { method: 'POST', path: '/predict', headers: { 'content-type': contentType }, body }).catch(
          (err: Error): RawAnswer => ({ status: 0, headers: {}, body: err.message }),
        );
        const classes = res.status === 200 ? (JSON.parse(res.body).predictions as { class_name: string }[]).map((p) => p.class_name) : [];
        answers.push({ status: res.status, upstream: String(res.headers['x-upstream'] ?? ''), started, classes });
        progress.changed();
      }
    }),
  );
  return {
    answers,
    until: (condition, what) => progress.until(() => condition(answers), what),
    stop: async () => {
      stopped = true;
      await running;
      return answers;
    },
  };
}

/** The X-Upstream of an answer from the instance on `port` alone (not retried from another). */
const upstreamOf = (port: number): string => `127.0.0.1:${port}`;

/** At least `count` answers from the instance on `port` among `answers`, of requests started after `after` (performance.now()). */
const answeredBy = (answers: Answer[], port: number, count: number, after = -Infinity): boolean =>
  answers.filter((a) => a.upstream === upstreamOf(port) && a.started > after).length >= count;

describe.skipIf(!READY)('a fleet behind nginx', () => {
  it('HTTPS at nginx; the instances answer in turn and share answers through Redis', async () => {
    const health = await rawRequest(nginxUrl, { path: '/health' });
    expect(health.status).toBe(200);
    expect(health.headers['strict-transport-security']).toMatch(/^max-age=/);
    const { body, contentType } = multipartBody(photos[0], 'fleet');
    const first = await rawRequest(nginxUrl, { method: 'POST', path: '/predict', headers: { 'content-type': contentType }, body });
    const again = await rawRequest(nginxUrl, { method: 'POST', path: '/predict', headers: { 'content-type': contentType }, body });
    expect(JSON.parse(first.body).cache_hit).toBe(false);
    expect(JSON.parse(again.body).cache_hit).toBe(true);
    // under load, until each instance has answered a few requests (nginx's round robin)
    const load = startLoad(4);
    await load.until((answers) => instances.every(({ port }) => answeredBy(answers, port, 3)), 'three answers from each instance');
    const answers = await load.stop();
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(new Set(answers.map((a) => a.upstream))).toEqual(new Set(instances.map(({ port }) => upstreamOf(port))));
  }, 60_000);

  it('SIGKILL of one instance under load loses no request', async () => {
    const victim = instances[1];
    const load = startLoad(6);
    // killed while both instances answer the load (so requests are in flight to it)...
    await load.until((answers) => instances.every(({ port }) => answeredBy(answers, port, 3)), 'three answers from each instance before the kill');
    victim.server.child.kill('SIGKILL');
    await victim.server.exited;
    // ...and the load goes on until a dozen requests sent after its death have been answered
    const dead = performance.now();
    await load.until((answers) => answers.filter((a) => a.started > dead).length >= 12, 'twelve answers to requests sent after the kill');
    const answers = await load.stop();
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // back for the next test, on the same port
    victim.server = await instance(victim.port);
  }, 90_000);

  it('a rolling model update loses no request, and no instance answers from the old model once it has reloaded', async () => {
    // under load until nginx uses the restarted instance again (after fail_timeout, 5 s), and each instance has
    // answered from the old model
    const load = startLoad(6);
    await load.until(
      (answers) => instances.every(({ port }) => answeredBy(answers, port, 3)),
      'three answers from each instance (nginx back to the restarted one after fail_timeout)',
    );

    // the new model: the same weights with a class renamed (another content id), written file by file atomically
    const mapping = JSON.parse(readFileSync(path.join(modelDir, 'class_mapping.json'), 'utf8')) as Record<string, number>;
    const renamed = Object.fromEntries(Object.entries(mapping).map(([k, v]) => [v === 0 ? 'pizza_v2' : k, v]));
    const meta = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')) as { classes: string[]; files: Record<string, unknown> };
    meta.classes = Object.entries(renamed)
      .sort((a, b) => a[1] - b[1])
      .map(([k]) => k);
    // model.json records each file's SHA-256 (checked at every load): the new mapping's
    const mappingText = JSON.stringify(renamed);
    meta.files['class_mapping.json'] = { sha256: createHash('sha256').update(mappingText).digest('hex'), bytes: Buffer.byteLength(mappingText) };
    for (const [name, content] of [
      ['class_mapping.json', mappingText],
      ['model.json', JSON.stringify(meta)],
    ] as const) {
      writeFileSync(path.join(modelDir, `${name}.new`), content);
      renameSync(path.join(modelDir, `${name}.new`), path.join(modelDir, name));
    }

    const reloadedAt = new Map<string, number>();
    for (const { port } of instances) {
      const res = await rawRequest(`http://127.0.0.1:${port}`, { method: 'POST', path: '/reload_model', headers: { Host: 'localhost' } });
      expect(res.status).toBe(200);
      const at = performance.now();
      reloadedAt.set(upstreamOf(port), at);
      // the reloaded instance serves the load before the next one reloads
      await load.until((answers) => answeredBy(answers, port, 3, at), `three answers from the instance on ${port} after its reload`);
    }
    const answers = await load.stop();
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const isNew = (a: Answer) => a.classes.includes('pizza v2');
    // before its reload an instance may answer from either model (the switch is atomic, at some point of the
    // reload); after it, only from the new one
    for (const [upstream, at] of reloadedAt) {
      const after = answers.filter((a) => a.upstream === upstream && a.started > at);
      expect(after.length, upstream).toBeGreaterThan(0);
      expect(
        after.filter((a) => !isNew(a)),
        upstream,
      ).toEqual([]);
    }
    expect(answers.some((a) => !isNew(a))).toBe(true); // the old model did answer before
  }, 90_000);
});
