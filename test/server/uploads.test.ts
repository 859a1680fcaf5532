// What one request may cost, against real servers: the cases an outside tester found (a declared gigabyte read to
// the end, chunked streams without end, stalled uploads, disconnects logged as 500s, CMYK converted on the event
// loop, huge or extreme images decoded without bound), each a regression test.
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';

import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';

import { chunkedPost, metric } from '../helpers/http.js';
import { rawContinued, rawUpload, stalledUpload } from '../helpers/raw-http.js';
import { getJson, logsSoFar, predict, SERVICE_NODE_FLAGS, type TestServer, useServers } from '../helpers/server.js';

const server = useServers();

describe('upload limits', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await server({ MAX_UPLOAD_MB: '1', UPLOAD_TIMEOUT: '2' });
  });

  it('a declared 1 GiB upload: 413 before a byte of the body is read, and the connection closed', async () => {
    const head = 'POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1073741824\r\n\r\n';
    const { response, sent } = await rawUpload(s.url, head, () => undefined);
    expect(sent).toBe(0);
    expect(response).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(response).toMatch(/\r\nConnection: close\r\n/i);
    expect(response).toContain('The upload is larger than the limit of 1 MiB (MAX_UPLOAD_MB): its Content-Length is 1073741824 bytes');
  });

  it('a chunked upload without end: 413 as it passes MAX_UPLOAD_MB, and the rest is not read', async () => {
    const head = 'POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const part = Buffer.from('--x\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n');
    let first = true;
    const block = Buffer.alloc(64 * 1024, 0x41);
    const chunk = (data: Buffer) => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
    // 256 MiB at most: far more than the server may read
    let left = 4096;
    const { response, sent, closed } = await rawUpload(s.url, head, () => {
      if (left-- <= 0) return undefined;
      if (first) {
        first = false;
        return chunk(part);
      }
      return chunk(block);
    });
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(response).toContain('The upload is larger than the limit of 1 MiB (MAX_UPLOAD_MB)');
    expect(closed).toBe(true);
    // the client could push no more than the limit and what the socket buffers held
    expect(sent).toBeLessThan(16 * 1024 * 1024);
  });

  it('a stalled upload: 408 after UPLOAD_TIMEOUT, the connection closed', async () => {
    const head = 'POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n';
    let once = true;
    const started = performance.now();
    const { response, closed } = await rawUpload(s.url, head, () => {
      if (!once) return undefined;
      once = false;
      return Buffer.from('--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n');
    });
    expect(response).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(closed).toBe(true);
    // UPLOAD_TIMEOUT's 2 s (Node checks every second), not the default 60 s: bounds far apart, for a busy machine
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1_900);
    expect(elapsed).toBeLessThan(30_000);
  });

  it('a client that goes away mid-upload is logged as a disconnect (info, 499), not as an error', async () => {
    // Expect: 100-continue: the server answers '100 Continue' as it dispatches the request, so the client knows
    // that the upload is being read when it goes away.
    const head =
      'POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 500000\r\nExpect: 100-continue\r\n\r\n';
    const since = s.logs.length;
    const { socket } = await rawContinued(s.url, head);
    socket.write('--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n');
    await new Promise<void>((resolve) =>
      socket.write(Buffer.alloc(10_000, 1), () => {
        socket.destroy();
        resolve();
      }),
    );
    const line = await s.waitForLog((l) => (l.res as { statusCode?: number } | undefined)?.statusCode === 499, {
      since,
      what: 'the log line of the upload whose client went away (499)',
    });
    expect(line).toMatchObject({ level: 30 });
    expect((await getJson(s.url, '/health')).status).toBe(200);
    // nothing at error level, up to and including that /health's line
    expect((await logsSoFar(s)).slice(since).filter((l) => (l.level as number) >= 50)).toEqual([]);
  });
});

describe('costly images', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await server({ MAX_UPLOAD_MB: '20' });
  });

  it("a 6000x6000 CMYK JPEG: 200 (converted off the event loop, with PIL's formula)", async () => {
    const cmyk = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 180, g: 90, b: 40 } } })
      .toColourspace('cmyk')
      .jpeg({ quality: 85 })
      .toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const res = await predict(s.url, cmyk, 'Image of food');
    expect(res.status).toBe(200);
    expect(res.body.predictions).toHaveLength(3);
  }, 60_000);

  it('a 6000x6000 RGBA PNG and a 1x20,000,000 PNG: 200', async () => {
    const rgba = await sharp({ create: { width: 6000, height: 6000, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } })
      .png()
      .toBuffer();
    const thin = await sharp({ create: { width: 1, height: 20_000_000, channels: 3, background: { r: 50, g: 50, b: 50 } } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    for (const image of [rgba, thin]) {
      const res = await predict(s.url, image, 'Image of food', 'image.png');
      expect(res.status).toBe(200);
    }
  }, 120_000);

  it('more memory to decode than MAX_DECODE_MB: 400 from the header, before decoding', async () => {
    const small = await server({ MAX_DECODE_MB: '16' });
    const rgba = await sharp({ create: { width: 3000, height: 3000, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 1 } } })
      .png()
      .toBuffer();
    const res = await predict(small.url, rgba, 'Image of food', 'image.png');
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe(
      'The uploaded image would take 61 MiB of memory to decode (3000x3000 pixels with alpha, CMYK or 16-bit samples are decoded whole); the limit is 16 MiB',
    );
  }, 60_000);

  it('large images decode one at a time (MAX_LARGE_DECODES=1); ordinary photos pass them', async () => {
    const big = await sharp({ create: { width: 6000, height: 4000, channels: 3, background: { r: 120, g: 80, b: 60 } } })
      .jpeg({ quality: 80 })
      .toBuffer();
    const photo = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 20, g: 80, b: 160 } } })
      .jpeg()
      .toBuffer();
    let maxRunning = 0;
    let maxWaiting = 0;
    let polling = true;
    // No event of the decodes' queue reaches the test: /system_status is polled while the requests run.
    const poll = (async () => {
      while (polling) {
        const q = (await getJson(s.url, '/system_status')).body.queue.large_decodes;
        maxRunning = Math.max(maxRunning, q.running);
        maxWaiting = Math.max(maxWaiting, q.waiting);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const answers = await Promise.all([
      ...[1, 2, 3].map((i) => predict(s.url, Buffer.concat([big, Buffer.from([i])]), 'Image of food')),
      predict(s.url, photo, 'Image of food'),
    ]);
    polling = false;
    await poll;
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(maxRunning).toBe(1);
    expect(maxWaiting).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('at most MAX_CONCURRENT_UPLOADS uploads are read at once: the next waits, unread, then is read and answered', async () => {
    const one = await server({ MAX_CONCURRENT_UPLOADS: '1' });
    const photo = (i: number) =>
      sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 40 * i, g: 90, b: 200 - 40 * i } } })
        .jpeg()
        .toBuffer();
    /** The gauge's value in /metrics. */
    const gauge = (name: string) => metric(one.url, name);
    // No event of the slots reaches the test: their gauges are polled until they say what is awaited.
    const until = async (what: () => Promise<boolean>) => {
      while (!(await what())) await new Promise((r) => setTimeout(r, 10));
    };
    const first = stalledUpload(one.url, await photo(1), 'the first upload');
    await first.started;
    first.sendHalf();
    await until(async () => (await gauge('predict_uploads_reading')) === 1);
    // The second is sent whole, and waits for the first's slot: not read, not answered.
    const second = stalledUpload(one.url, await photo(2), 'the second upload');
    await second.started;
    second.sendHalf();
    second.finish();
    await until(async () => (await gauge('predict_uploads_waiting')) === 1);
    expect(await gauge('predict_uploads_reading')).toBe(1);
    first.finish();
    expect((await first.response).status).toBe(200);
    expect((await second.response).status).toBe(200);
    await until(async () => (await gauge('predict_uploads_reading')) === 0 && (await gauge('predict_uploads_waiting')) === 0);
  }, 60_000);

  it('an upload sent chunked (no Content-Length) is kept whole: the same answer, from the cache, as sent with one', async () => {
    const photo = await sharp({ create: { width: 1600, height: 1200, channels: 3, noise: { type: 'gaussian', mean: 120, sigma: 50 } } } as never)
      .jpeg({ quality: 95 })
      .toBuffer();
    expect(photo.length).toBeGreaterThan(1024 * 1024); // past the storage's first buffer: it grows
    const withLength = await predict(s.url, photo, 'a chunked upload');
    expect(withLength.status).toBe(200);
    expect(withLength.body.cache_hit).toBe(false);
    const form = new FormData();
    form.append('image', new Blob([photo]), 'photo.jpg');
    form.append('text', 'a chunked upload');
    const res = await fetch(`${s.url}/predict`, await chunkedPost(form));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ...withLength.body, cache_hit: true });
  }, 60_000);

  it("runs with npm start's Node flags (one V8 helper thread: --v8-pool-size=1), named in its listening line", () => {
    expect(SERVICE_NODE_FLAGS).toContain('--v8-pool-size=1');
    // This service runs the TypeScript (`--import tsx` follows); `npm start`, the build with these flags alone.
    expect(s.logs.find((l) => l.msg === 'listening')?.node_flags).toEqual([...SERVICE_NODE_FLAGS, '--import', 'tsx']);
  });

  it.skipIf(process.platform !== 'linux')(
    'every thread but the event loop runs at a lower priority (nice +10), the decoders too',
    async () => {
      // An image decoded whole first: the decoders' threads (libvips', from libuv's pool) and the worker exist.
      const rgba = await sharp({ create: { width: 600, height: 400, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } })
        .png()
        .toBuffer();
      expect((await predict(s.url, rgba, 'Image of food', 'image.png')).status).toBe(200);
      const pid = s.child.pid!;
      const threads = () =>
        readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
          try {
            const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
            const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
            return [{ tid: Number(tid), name: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), nice }];
          } catch {
            return []; // the thread ended meanwhile
          }
        });
      const started = getPriority(0); // the service started with this test's nice value
      const lowered = Math.min(19, started + 10);
      // libuv's pool, V8's helpers, the ONNX sessions' workers and their threads, libvips' decoders, the
      // whole-image decoder's worker: all lowered, those started lately within the service's next look (every
      // second), and none lowered twice.
      await vi.waitFor(
        () => {
          const all = threads();
          expect(all.find((t) => t.tid === pid)?.nice).toBe(started);
          const others = all.filter((t) => t.tid !== pid);
          expect(others.length).toBeGreaterThanOrEqual(8);
          expect(others.some((t) => t.name.startsWith('libvips'))).toBe(true);
          expect(others.filter((t) => t.nice !== lowered)).toEqual([]);
        },
        { timeout: 5_000, interval: 200 },
      );
    },
    30_000,
  );
});
