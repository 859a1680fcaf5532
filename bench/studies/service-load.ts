// Study 4, the HTTP service under autocannon: each backend, with the prediction cache off and with every
// request a cache hit, at each concurrency; req/s, p50/p99, errors and the service's peak resident memory.
import { existsSync } from 'node:fs';
import path from 'node:path';

import autocannon from 'autocannon';
import sharp from 'sharp';

import { multipartBody } from '../../scripts/lib/multipart.js';
import { type ServiceProcess, startServer } from '../../scripts/lib/service.js';
import { peakRssMb, resetPeakRss } from '../peak-rss.js';
import type { BenchPlan } from '../plan.js';
import type { ServiceRow } from '../results.js';
import { threadsEnv } from '../runners.js';

async function uploadBody(plan: BenchPlan): Promise<{ body: Buffer; contentType: string; photo: string }> {
  const sample = path.join(plan.paths.sharedData, 'samples', 'pexels-valeriya-1639557.jpg');
  // A phone-sized upload: the sample photo scaled to 1024 pixels (or, without ../shared/data, a synthetic one).
  const jpeg = existsSync(sample)
    ? await sharp(sample).resize(1024, 1024, { fit: 'inside' }).jpeg({ quality: 85 }).toBuffer()
    : await sharp({ create: { width: 1024, height: 768, channels: 3, background: { r: 180, g: 120, b: 60 } } })
        .jpeg()
        .toBuffer();
  return {
    ...multipartBody(jpeg, 'Image of food'),
    photo: existsSync(sample) ? `${path.basename(sample)} at 1024 px (${jpeg.length} bytes)` : 'synthetic 1024x768 JPEG',
  };
}

/**
 * The service as configured by default, whatever the caller's environment holds (serverEnv: port 0, the default
 * model, 2 threads, request logs included), with the backend and cache asked for, on Debian's LibTorch; its
 * build in dist/ when there is one, as `npm start` runs it.
 */
function startService(plan: BenchPlan, backend: 'torch' | 'onnx', cache: boolean): Promise<ServiceProcess> {
  const { repo } = plan.paths;
  return startServer(
    { ...threadsEnv(2), DEVICE: 'cpu', BACKEND: backend, PREDICTION_CACHE_SIZE: cache ? '100' : '0', TORCH_NODE_ADDON: plan.paths.addon113 },
    repo,
    { entry: existsSync(path.join(repo, 'dist', 'server', 'main.js')) ? 'dist' : 'source', cleanEnv: true },
  );
}

export async function serviceLoad(plan: BenchPlan): Promise<{ rows: ServiceRow[]; photo: string }> {
  const { progress, quick, durationS: duration } = plan;
  const { body, contentType, photo } = await uploadBody(plan);
  const rows: ServiceRow[] = [];
  const services = (['torch', 'onnx'] as const).flatMap((backend) => [false, true].map((cache) => ({ backend, cache })));
  for (const [i, setup] of services.entries()) {
    let service: ServiceProcess;
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
        resetPeakRss(service.child.pid!);
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
          peak_rss_mb: peakRssMb(service.child.pid!),
        });
        progress(`   ${r.requests.average.toFixed(1)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors + r.non2xx}`);
      }
    } finally {
      await service.stop();
    }
  }
  return { rows, photo };
}
