// The study's load runs (step 3 of bench/workshop-service.ts): the service as a user starts it, under
// bench/load-client.ts at each concurrency while another client asks /health, and from /metrics where the
// time went.
import { scrapeMetrics } from '../../scripts/lib/metrics.js';
import { startServer } from '../../scripts/lib/service.js';
import { peakRssMb, resetPeakRss } from '../peak-rss.js';
import type { Stats, WorkshopServiceResults, WorkshopServiceRow } from '../results.js';
import type { WorkshopServicePlan } from './plan.js';
import { runJson } from './run-json.js';

/** Sums and counts of /metrics' histograms, and the caches' hits, to difference before and after a run. */
async function histogramTotals(url: string): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const [sample, value] of await scrapeMetrics(url)) {
    const m = /^(inference_forward_seconds|inference_batch_size|predict_preprocess_seconds|predict_queue_seconds)_(sum|count)(\{model="(\w+)"\})?$/.exec(
      sample,
    );
    if (m) totals[`${m[1]}${m[4] ? `:${m[4]}` : ''}_${m[2]}`] = value;
    const hits = /^cache_hits_total\{cache="(\w+)"\}$/.exec(sample);
    if (hits) totals[`cache_hits:${hits[1]}`] = value;
  }
  return totals;
}

export async function serviceRuns(
  plan: WorkshopServicePlan,
  photos: string,
  shape: { workers: number; concurrencies: number[]; precision?: 'fp32' | 'int8' },
): Promise<{ runs: WorkshopServiceRow[]; service: WorkshopServiceResults['service'] }> {
  // The service as `npm start` runs it (its Node flags), its defaults, the model folder and THREADS set
  // (with WORKERS, the threads divided among the workers); and the prediction cache off, because each run's
  // client starts again at the first photo: with the cache on, the photos an earlier run (the warm-up) sent
  // with the same text would be answered from it at no cost (a 3-second run counted ~40 % of such answers).
  const threads = Math.max(1, Math.floor(plan.threads / shape.workers));
  const precision = shape.precision ?? 'fp32';
  const server = await startServer(
    { MODEL_DIR: plan.modelDir, THREADS: String(threads), WORKERS: String(shape.workers), PREDICTION_CACHE_SIZE: '0', PRECISION: precision },
    plan.repo,
    {
      entry: 'dist',
      cleanEnv: true,
    },
  );
  const runs: WorkshopServiceRow[] = [];
  let service: WorkshopServiceResults['service'];
  try {
    const status = (await (await fetch(`${server.url}/system_status`)).json()) as {
      backend: string;
      layout: string;
      threads: number;
      libtorch: { version: string; blas: { kernel: string; source: string } } | null;
      onnxruntime: { version: string } | null;
    };
    service = {
      backend: status.backend,
      layout: status.layout,
      threads: status.threads,
      runtime: status.onnxruntime
        ? `ONNX Runtime ${status.onnxruntime.version}`
        : `LibTorch ${status.libtorch?.version}, BLAS kernel ${status.libtorch?.blas.kernel} (${status.libtorch?.blas.source})`,
    };
    const client = (extra: string[], seconds: number) =>
      runJson<{ requests: number; errors: number; cache_hits?: number; requests_per_s?: number } & Stats>(
        process.execPath,
        ['--import', 'tsx', 'bench/load-client.ts', '--url', server.url, '--seconds', String(seconds), ...extra],
        process.env,
        plan.repo,
      );
    await client(['--photos', photos, '--concurrency', '2', '--text', 'same'], 2); // warm-up
    for (const text of ['same', 'different'] as const) {
      for (const concurrency of shape.concurrencies) {
        plan.progress(
          `[workshop model] the service (${shape.workers} x ${threads} threads, ${precision}), ${text} text, concurrency ${concurrency}, ${plan.durationS} s`,
        );
        const before = await histogramTotals(server.url);
        resetPeakRss(server.child.pid!);
        const [load, health] = await Promise.all([
          client(['--photos', photos, '--concurrency', String(concurrency), '--text', text], plan.durationS),
          client(['--health'], plan.durationS),
        ]);
        const after = await histogramTotals(server.url);
        const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
        const mean = (name: string, scale = 1000) => (delta(`${name}_count`) > 0 ? (delta(`${name}_sum`) / delta(`${name}_count`)) * scale : undefined);
        const row: WorkshopServiceRow = {
          workers: shape.workers,
          threads,
          precision,
          text,
          concurrency,
          requests_per_s: load.requests_per_s ?? 0,
          p50_ms: load.p50,
          p99_ms: load.p99,
          errors: load.errors,
          requests: load.requests,
          health_p50_ms: health.p50,
          health_p99_ms: health.p99,
          peak_rss_mb: peakRssMb(server.child.pid!),
          head_forward_ms: mean('inference_forward_seconds:head'),
          head_batch: mean('inference_batch_size:head', 1),
          text_forward_ms: mean('inference_forward_seconds:text_encoder'),
          text_batch: mean('inference_batch_size:text_encoder', 1),
          preprocess_ms: mean('predict_preprocess_seconds'),
          queue_ms: mean('predict_queue_seconds'),
        };
        // A "different" text must be new to the service: its features computed, never found in the cache.
        if (text === 'different' && delta('cache_hits:text_features') > 0) {
          throw new Error(`the different-text run at concurrency ${concurrency} found ${delta('cache_hits:text_features')} texts' features in the cache`);
        }
        if (load.cache_hits)
          throw new Error(
            `the ${text}-text run at concurrency ${concurrency} got ${load.cache_hits} answers from the prediction cache: its rate would not be the model's`,
          );
        runs.push(row);
        plan.progress(
          `   ${row.requests_per_s.toFixed(1)} req/s, p50 ${row.p50_ms.toFixed(0)} ms, p99 ${row.p99_ms.toFixed(0)} ms, errors ${row.errors}, ` +
            `/health p99 ${row.health_p99_ms.toFixed(1)} ms, peak RSS ${row.peak_rss_mb.toFixed(0)} MB; head ${row.head_forward_ms?.toFixed(1)} ms x ${row.head_batch?.toFixed(2)}`,
        );
      }
    }
  } finally {
    await server.stop();
  }
  return { runs, service };
}
