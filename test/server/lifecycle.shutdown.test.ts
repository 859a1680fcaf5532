// The service's graceful shutdown, against real running servers (each its own process, the real addon, the default
// model in models/, real JPEGs): SIGTERM and SIGINT with requests in flight or idle, a request on an open
// connection after the signal, SHUTDOWN_TIMEOUT, and a second signal. No durations are asserted: time limits are
// generous. Start-up and configuration are in lifecycle.config.test.ts, /reload_model in lifecycle.reload.test.ts.
import { afterAll, describe, expect, it, vi } from 'vitest';

import { expectPredictionBody, multipartBody, status } from '../helpers/http.js';
import { largePhoto, smallPhotos } from '../helpers/photos.js';
import { shutdown, trackProcesses, tryConnect } from '../helpers/processes.js';
import { rawContinued, stalledUpload } from '../helpers/raw-http.js';
import { getJson, predict, spawnServer } from '../helpers/server.js';

// Every child started here is killed at the end, whatever a test did.
const tracked = trackProcesses('lifecycle-');
const { serve } = tracked;
afterAll(() => tracked.cleanup());

// ---------------------------------------------------------------------------------------------------------------

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
      console.info(`[lifecycle.shutdown.test] SIGTERM: ${count - answeredAtSignal} of ${count} complete predictions and 2 partial uploads in flight`);
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
