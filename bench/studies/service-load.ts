// Study 4, the HTTP service under autocannon: each backend, with the prediction cache off and with every
// request a cache hit, at each concurrency; req/s, p50/p99, errors and the service's peak resident memory.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import autocannon from 'autocannon';
import sharp from 'sharp';

import { VARIABLES as SERVICE_VARIABLES } from '../../src/server/config.js';
import type { BenchPlan } from '../plan.js';
import type { ServiceRow } from '../results.js';
import { measurementEnv, TSX } from '../runners.js';

async function uploadBody(plan: BenchPlan): Promise<{ body: Buffer; contentType: string; photo: string }> {
  const sample = path.join(plan.paths.sharedData, 'samples', 'pexels-valeriya-1639557.jpg');
  // A phone-sized upload: the sample photo scaled to 1024 pixels (or, without ../shared/data, a synthetic one).
  const jpeg = existsSync(sample)
    ? await sharp(sample).resize(1024, 1024, { fit: 'inside' }).jpeg({ quality: 85 }).toBuffer()
    : await sharp({ create: { width: 1024, height: 768, channels: 3, background: { r: 180, g: 120, b: 60 } } })
        .jpeg()
        .toBuffer();
  const boundary = '----torchscript-node-bench';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
    jpeg,
    Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nImage of food\r\n--${boundary}--\r\n`),
  ]);
  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    photo: existsSync(sample) ? `${path.basename(sample)} at 1024 px (${jpeg.length} bytes)` : 'synthetic 1024x768 JPEG',
  };
}

async function startService(plan: BenchPlan, backend: 'torch' | 'onnx', cache: boolean): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const { repo } = plan.paths;
  const main = existsSync(path.join(repo, 'dist', 'server', 'main.js')) ? ['dist/server/main.js'] : [...TSX, 'src/server/main.ts'];
  // The service's defaults, whatever the caller's environment holds: only what is set here differs.
  const env = measurementEnv(2, {});
  for (const v of SERVICE_VARIABLES) delete env[v.name];
  Object.assign(env, {
    PORT: '0',
    MODEL_DIR: path.join(repo, 'models'),
    DEVICE: 'cpu',
    BACKEND: backend,
    THREADS: '2',
    LOG_LEVEL: 'info',
    PREDICTION_CACHE_SIZE: cache ? '100' : '0',
    ENV_FILE: '/dev/null',
    TORCH_NODE_ADDON: plan.paths.addon113,
  });
  const child = spawn(process.execPath, main, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  // The service as configured by default, request logs included (read and dropped here); its 'listening' line
  // gives the port.
  const url = await new Promise<string>((resolve, reject) => {
    let head = '';
    let listening = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the service did not listen within 60 s: ${stderr}`));
    }, 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited (${code}): ${stderr}`));
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (listening) return;
      head += chunk;
      const line = head.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (!line) return;
      listening = true;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        child.removeAllListeners('exit');
        if (exited()) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The process's peak resident memory since the last resetPeakRss (Linux: VmHWM). */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? 0) / 1024;
}

/** Resets VmHWM to the current RSS (writing 5 to clear_refs), so that each load level has its own peak. */
function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not permitted here: the peak is then the peak so far, which the report says
  }
}

export async function serviceLoad(plan: BenchPlan): Promise<{ rows: ServiceRow[]; photo: string }> {
  const { progress, quick, durationS: duration } = plan;
  const { body, contentType, photo } = await uploadBody(plan);
  const rows: ServiceRow[] = [];
  const services = (['torch', 'onnx'] as const).flatMap((backend) => [false, true].map((cache) => ({ backend, cache })));
  for (const [i, setup] of services.entries()) {
    let service: Awaited<ReturnType<typeof startService>>;
    try {
      service = await startService(plan, setup.backend, setup.cache);
    } catch (err) {
      progress(`   the service (BACKEND=${setup.backend}) did not start: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    try {
      const fire = (connections: number, seconds: number) =>
        autocannon({
          url: `${service.url}/predict`,
          method: 'POST',
          headers: { 'content-type': contentType },
          body,
          connections,
          duration: seconds,
          pipelining: 1,
        });
      await fire(1, quick ? 1 : 2); // warm-up
      for (const connections of plan.concurrencies) {
        progress(
          `[service ${i + 1}/${services.length}] BACKEND=${setup.backend}, cache ${setup.cache ? 'hits' : 'off'}, concurrency ${connections}, ${duration} s`,
        );
        resetPeakRss(service.pid);
        const r = await fire(connections, duration);
        rows.push({
          backend: setup.backend,
          cache: setup.cache ? 'hits' : 'off',
          concurrency: connections,
          requests_per_s: r.requests.average,
          p50_ms: r.latency.p50,
          p99_ms: r.latency.p99,
          // autocannon's errors include its timeouts; non-2xx answers are errors too
          errors: r.errors + r.non2xx,
          requests: r.requests.total,
          peak_rss_mb: peakRssMb(service.pid),
        });
        progress(`   ${r.requests.average.toFixed(1)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors + r.non2xx}`);
      }
    } finally {
      await service.stop();
    }
  }
  return { rows, photo };
}
