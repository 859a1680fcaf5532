// WORKERS=2 against a real service: two worker processes answer, a killed one is replaced, a reload reaches
// both, /metrics counts both, every wait between the processes is bounded (a stopped worker costs a reload and a
// scrape an error within RELOAD_TIMEOUT and 5 s, not an answer that never comes), a connection is never held by
// the primary (one that waits while the workers are stopped and killed is answered by a new worker), and
// SIGTERM stops them all gracefully.
import { readFileSync } from 'node:fs';

import { beforeAll, describe, expect, it } from 'vitest';

import { sampleOf } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { SERVICE_NODE_FLAGS, type TestServer, useServers } from '../helpers/server.js';

/** Seconds the primary waits for each worker's reload: short, for the test of a worker that does not answer. */
const RELOAD_TIMEOUT = 10;

// stopped by useServers' afterAll unless a test has stopped it (stop() then only awaits the exit)
const start = useServers();
let s: TestServer;
beforeAll(async () => {
  s = await start({ WORKERS: '2', THREADS: '', RELOAD_TIMEOUT: String(RELOAD_TIMEOUT) });
}, 120_000);

interface Answer {
  status: number;
  body: any;
}

/**
 * A request over a connection of its own (no agent: a kept-alive one may lead to a stopped worker), answered
 * within `withinMs` or a failure that says what did not answer. `onConnected` runs once the request is sent.
 */
async function request(path: string, options: { method?: string; withinMs?: number; onConnected?: () => void } = {}): Promise<Answer> {
  const { method = 'GET', withinMs = 30_000 } = options;
  const res = await rawRequest(s.url, { method, path, headers: { Connection: 'close' }, ownConnection: true, withinMs, onSent: options.onConnected });
  return { status: res.status, body: res.body.startsWith('{') ? JSON.parse(res.body) : res.body };
}

/** /system_status over a new connection each time. */
async function status(): Promise<{ worker: number; workers: number; threads: number; model_generation: number }> {
  return (await request('/system_status')).body;
}

/** The workers that answer `n` requests (each over a connection of its own). */
async function workerPids(n = 8): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) pids.add((await status()).worker);
  return pids;
}

/** The worker processes now: the primary's children (Linux's /proc). */
function children(): number[] {
  const pid = s.child.pid!;
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The first log line from the `from`th on (by default, from the next one) that `match` accepts (TestServer.waitForLog). */
function logLine(match: (line: Record<string, unknown>) => boolean, withinMs: number, what: string, from = s.logs.length): Promise<Record<string, unknown>> {
  return s.waitForLog(match, { since: from, timeoutMs: withinMs, what });
}

/** The next new worker's 'worker listening' line: one that is none of `known`. */
const newWorker = (known: Iterable<number>, withinMs = 60_000): Promise<number> => {
  const old = new Set(known);
  return logLine((l) => l.msg === 'worker listening' && !old.has(l.worker as number), withinMs, `a worker other than ${[...old].join(', ')} listening`).then(
    (l) => l.worker as number,
  );
};

/** Resolves once `pid` is stopped (state T in /proc), as SIGSTOP leaves it a moment after the signal. */
async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (/^\d+ \(.*\) T/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`process ${pid} did not stop`);
}

describe('WORKERS=2', () => {
  it('two worker processes answer, each with the cores divided among them (THREADS)', async () => {
    const pids = await workerPids();
    expect(pids.size).toBe(2);
    expect(pids.has(s.child.pid!)).toBe(false);
    const one = await status();
    expect(one.workers).toBe(2);
    expect(one.threads).toBeGreaterThanOrEqual(1);
    // Each worker writes its own line (to the pipe the primary's lines share): awaited, not assumed there.
    await logLine((l) => s.logs.filter((x) => x.msg === 'worker listening').length >= 2 && l.msg === 'worker listening', 30_000, 'both workers listening', 0);
    expect(s.logs.filter((l) => l.msg === 'worker listening')).toHaveLength(2);
  });

  it("every worker runs with the primary's Node flags (npm start's --v8-pool-size=1), named in its listening line", async () => {
    await logLine((l) => s.logs.filter((x) => x.msg === 'worker listening').length >= 2 && l.msg === 'worker listening', 30_000, 'both workers listening', 0);
    const primary = s.logs.find((l) => l.msg === 'listening');
    expect(primary?.node_flags).toEqual(expect.arrayContaining(SERVICE_NODE_FLAGS));
    const workers = s.logs.filter((l) => l.msg === 'worker listening');
    expect(workers).toHaveLength(2);
    for (const w of workers) {
      expect(w.node_flags).toEqual(primary?.node_flags);
      if (process.platform === 'linux') {
        expect(readFileSync(`/proc/${String(w.worker)}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(SERVICE_NODE_FLAGS));
      }
    }
  });

  it('a reload reaches every worker; /metrics counts every worker', async () => {
    const res = await rawRequest(s.url, { method: 'POST', path: '/reload_model' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'model reloaded', model_generation: 2, workers: 2 });
    const generations = new Set<number>();
    for (let i = 0; i < 8; i++) generations.add((await status()).model_generation);
    expect([...generations]).toEqual([2]);

    for (let i = 0; i < 6; i++) await rawRequest(s.url, { path: '/classes', headers: { Connection: 'close' } });
    const metrics = (await rawRequest(s.url, { path: '/metrics' })).body;
    expect(sampleOf(metrics, 'http_requests_total{route="/classes",method="GET",status="200"}')).toBe(6);
    expect(sampleOf(metrics, 'model_generation')).toBe(2);
  }, 60_000);

  it('a worker that dies is replaced, and the service answers on', async () => {
    const before = children();
    expect(before).toHaveLength(2);
    const victim = before[0];
    const replaced = newWorker(before);
    process.kill(victim, 'SIGKILL');
    const successor = await replaced;
    expect(children().sort()).toEqual([before[1], successor].sort());
    expect(s.logs.some((l) => l.msg === 'a worker stopped: starting another' && l.pid === victim)).toBe(true);
    expect((await status()).workers).toBe(2);
  }, 60_000);

  it.skipIf(process.platform !== 'linux')(
    'a worker that does not answer (SIGSTOP): a reload answers at RELOAD_TIMEOUT that 1 of 2 workers did not answer; /metrics a 503 that says why',
    async () => {
      const [victim, other] = children();
      const from = s.logs.length;
      process.kill(victim, 'SIGSTOP');
      try {
        await stopped(victim);
        const started = performance.now();
        // The running worker takes both (it alone accepts); the primary asks both workers.
        const [reload, metrics] = await Promise.all([
          request('/reload_model', { method: 'POST', withinMs: (RELOAD_TIMEOUT + 20) * 1000 }),
          request('/metrics', { withinMs: 20_000 }),
        ]);
        const seconds = (performance.now() - started) / 1000;
        expect(reload).toEqual({
          status: 500,
          body: { detail: `Reload failed: 1 of 2 workers did not answer within ${RELOAD_TIMEOUT} s (RELOAD_TIMEOUT) and may still reload; 1 reloaded` },
        });
        expect(metrics).toEqual({
          status: 503,
          body: { detail: "Metrics unavailable: the primary could not gather the workers' metrics: a worker did not answer within 5 s" },
        });
        // not before the bound (an upper one is the request's own withinMs: a busy machine may be slow)
        expect(seconds).toBeGreaterThanOrEqual(RELOAD_TIMEOUT - 0.5);
        // the primary's line, written before it answered the worker, reaches the test by another pipe: awaited
        await logLine(
          (l) => l.msg === 'workers did not answer a reload within RELOAD_TIMEOUT' && (l.workers as number[]).includes(victim),
          30_000,
          "the primary's line about the silent worker",
          from,
        );
      } finally {
        process.kill(victim, 'SIGCONT');
      }
      // Resumed, the worker carries out the reload it was asked for, and says so late; both serve on.
      await logLine((l) => l.msg === 'a worker answered a reload after RELOAD_TIMEOUT' && l.worker === victim, 30_000, 'the resumed worker answering', from);
      expect(children().sort()).toEqual([victim, other].sort());
      const again = await request('/reload_model', { method: 'POST' });
      expect(again).toMatchObject({ status: 200, body: { status: 'model reloaded', workers: 2 } });
    },
    60_000,
  );

  it.skipIf(process.platform !== 'linux')(
    "a primary that does not answer (SIGSTOP): a worker's /metrics answers 503 that says so",
    async () => {
      process.kill(s.child.pid!, 'SIGSTOP');
      try {
        await stopped(s.child.pid!);
        // The workers accept connections themselves: the request reaches one, which asks the stopped primary.
        // answered (withinMs bounds the wait) with the worker's own 10 s bound in its message
        const metrics = await request('/metrics', { withinMs: 30_000 });
        expect(metrics).toEqual({ status: 503, body: { detail: 'Metrics unavailable: the primary process did not answer within 10 s' } });
      } finally {
        process.kill(s.child.pid!, 'SIGCONT');
      }
      expect((await request('/metrics')).status).toBe(200);
    },
    60_000,
  );

  it.skipIf(process.platform !== 'linux')(
    'a connection that arrives while every worker is stopped, and they are killed, is answered by a new worker (the primary never holds it)',
    async () => {
      const old = children();
      expect(old).toHaveLength(2);
      for (const pid of old) process.kill(pid, 'SIGSTOP');
      await Promise.all(old.map(stopped));
      // Under round-robin the primary would accept this connection and hand it to a stopped worker, with it lost.
      let sent!: () => void;
      const connected = new Promise<void>((resolve) => (sent = resolve));
      const answer = request('/system_status', { withinMs: 60_000, onConnected: () => sent() });
      await connected;
      // One at a time, so that the port always has a worker (node:cluster closes it when the last one leaves).
      const first = newWorker(old);
      process.kill(old[0], 'SIGKILL');
      const successor = await first;
      const second = newWorker([...old, successor]);
      process.kill(old[1], 'SIGKILL');
      const answered = await answer;
      expect(answered.status).toBe(200);
      expect(old).not.toContain(answered.body.worker);
      await second;
      expect(children()).toHaveLength(2);
    },
    120_000,
  );

  it('SIGTERM to the primary stops every worker gracefully: exit 0', async () => {
    const pids = await workerPids();
    expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(s.logs.filter((l) => l.msg === 'stopped').length).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
