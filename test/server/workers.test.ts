// WORKERS=2 against a real service: two worker processes answer in turn, a killed one is replaced, a reload
// reaches both, /metrics counts both, and SIGTERM stops them all gracefully.
import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { rawRequest, SERVICE_NODE_FLAGS, startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startServer({ WORKERS: '2', THREADS: '' });
}, 120_000);
afterAll(async () => {
  if (s?.alive()) await s.stop();
});

/** /system_status over a new connection each time (the primary hands connections to the workers in turn). */
async function status(): Promise<{ worker: number; workers: number; threads: number; model_generation: number }> {
  return JSON.parse((await rawRequest(s.url, { path: '/system_status', headers: { Connection: 'close' } })).body);
}

async function workerPids(n = 8): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < n; i++) pids.add((await status()).worker);
  return pids;
}

describe('WORKERS=2', () => {
  it('two worker processes answer, each with the cores divided among them (THREADS)', async () => {
    const pids = await workerPids();
    expect(pids.size).toBe(2);
    expect(pids.has(s.child.pid!)).toBe(false);
    const one = await status();
    expect(one.workers).toBe(2);
    expect(one.threads).toBeGreaterThanOrEqual(1);
    const listening = s.logs.filter((l) => l.msg === 'worker listening');
    expect(listening).toHaveLength(2);
  });

  it("every worker runs with the primary's Node flags (npm start's --v8-pool-size=1), named in its listening line", () => {
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
    expect(metrics).toContain('http_requests_total{route="/classes",method="GET",status="200"} 6');
    expect(metrics).toMatch(/^model_generation 2$/m);
  }, 60_000);

  it('a worker that dies is replaced, and the service answers on', async () => {
    const before = await workerPids();
    const victim = [...before][0];
    process.kill(victim, 'SIGKILL');
    let after = new Set<number>();
    for (let i = 0; i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      after = await workerPids(6).catch(() => new Set<number>());
      if (after.size === 2 && !after.has(victim)) break;
    }
    expect(after.has(victim)).toBe(false);
    expect(after.size).toBe(2);
    expect(s.logs.some((l) => l.msg === 'a worker stopped: starting another' && l.pid === victim)).toBe(true);
  }, 60_000);

  it('SIGTERM to the primary stops every worker gracefully: exit 0', async () => {
    const pids = await workerPids();
    expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(s.logs.filter((l) => l.msg === 'stopped').length).toBeGreaterThanOrEqual(3);
  }, 60_000);
});
