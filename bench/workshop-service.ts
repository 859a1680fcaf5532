// `npm run bench`'s study of the service on the workshop's full-size model (ResNet18 + BERT-base, random weights,
// exported into a temporary folder), against the workshop's own app measured in the same run:
//   1. the baseline: Python torch's eager forward of the whole model, one at a time, as the workshop's app runs
//      it (bench/workshop_baseline.py on Debian's python3-torch, the environment as it is); its rate is 1/p50.
//      Measured with torch's own thread count (as the app runs) and with THREADS, as the service gets.
//   2. the service's forwards, batch 1, on every backend at hand: the head (what a request with a known text
//      costs) and the text encoder (what a new text adds). The fastest is what the service's default is held to.
//   3. the service with its defaults (THREADS fixed, the prediction cache off): distinct photos at each concurrency, (a) the same text on
//      every request, (b) a different text on every request; req/s, p50/p99, /health's latency from another
//      process, peak RSS, and from /metrics where the time went (forward, batch size, preprocessing, queue).
//      At fp32 (the default) and, where the folder has its int8 variant, at PRECISION=int8; then 2 workers x 1 thread.
//   4. the int8 variants' agreement with fp32, from model.json (bench/workshop/agreement.ts).
// Steps 1 and 2 are in bench/workshop/forwards.ts, step 3 in bench/workshop/service-runs.ts; this file holds the
// study's uploads, the order of the steps and the headline figures; its plan is in bench/workshop/plan.ts, the
// shape of its results in bench/results.ts.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import type { WorkshopServiceResults } from './results.js';
import type { WorkshopServicePlan } from './workshop/plan.js';
import { int8Agreement } from './workshop/agreement.js';
import { baseline, forwards } from './workshop/forwards.js';
import { serviceRuns } from './workshop/service-runs.js';

/** The uploads: the food photos of ../shared/data (distinct, about 512 px), or synthetic ones without it. */
async function photoFolder(plan: WorkshopServicePlan): Promise<{ dir: string; label: string }> {
  const food = path.join(plan.sharedData, 'food');
  if (existsSync(path.join(food, 'val'))) {
    const dir = path.join(plan.workDir, 'photos');
    mkdirSync(dir, { recursive: true });
    let n = 0;
    for (const split of ['val', 'train']) {
      for (const cls of readdirSync(path.join(food, split)).sort()) {
        for (const f of readdirSync(path.join(food, split, cls)).sort()) {
          writeFileSync(path.join(dir, `${String(n++).padStart(4, '0')}.jpg`), readFileSync(path.join(food, split, cls, f)));
        }
      }
    }
    return { dir, label: `${n} distinct Food-101 photos of ../shared/data (512 px JPEGs), each in turn` };
  }
  const dir = path.join(plan.workDir, 'synthetic-photos');
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < 64; i++) {
    const pixels = Buffer.alloc(512 * 384 * 3);
    for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 7) + (p >> 9) * 13) & 255;
    await sharp(pixels, { raw: { width: 512, height: 384, channels: 3 } })
      .jpeg({ quality: 88 })
      .toFile(path.join(dir, `${i}.jpg`));
  }
  return { dir, label: '64 distinct synthetic 512x384 JPEGs (../shared/data is absent)' };
}

export async function workshopService(plan: WorkshopServicePlan): Promise<WorkshopServiceResults> {
  mkdirSync(plan.workDir, { recursive: true });
  const photos = await photoFolder(plan);
  const base = await baseline(plan);
  const parts = await forwards(plan);
  const { runs, service } = await serviceRuns(plan, photos.dir, { workers: 1, concurrencies: plan.concurrencies });
  // The same at PRECISION=int8: the folder's int8 variant, on ONNX Runtime.
  if (plan.int8) runs.push(...(await serviceRuns(plan, photos.dir, { workers: 1, concurrencies: plan.concurrencies, precision: 'int8' })).runs);
  // The other way to use the cores: two workers of one thread each (WORKERS=2), at concurrency 4.
  const two = await serviceRuns(plan, photos.dir, { workers: 2, concurrencies: [4] });
  runs.push(...two.runs);
  const agreement = [
    int8Agreement('default model (models/)', path.join(plan.repo, 'models')),
    int8Agreement('full-size workshop model (random weights)', plan.modelDir),
  ].filter((a) => a !== undefined);
  return {
    model: 'full-size workshop model (ResNet18 + BERT-base, 132.5 M parameters, random weights)',
    photos: photos.label,
    service,
    baseline: base,
    forwards: parts,
    runs,
    agreement,
  };
}

/** The headline figures: rates against the baseline at THREADS, the targets of the issue that asked for them. */
export function workshopHeadlines(r: WorkshopServiceResults | undefined): Record<string, number | null> | null {
  if (!r) return null;
  const round = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : Math.round(v * 1000) / 1000);
  const base = r.baseline.at(-1)?.requests_per_s;
  const appBase = r.baseline[0]?.requests_per_s;
  const run = (text: string, c: number, workers = 1, precision = 'fp32') =>
    r.runs.find((x) => x.text === text && x.concurrency === c && (x.workers ?? 1) === workers && (x.precision ?? 'fp32') === precision);
  const int8Same4 = run('same', 4, 1, 'int8');
  const int8Diff4 = run('different', 4, 1, 'int8');
  const fullAgreement = r.agreement?.find((a) => a.model.startsWith('full'));
  const demoAgreement = r.agreement?.find((a) => a.model.startsWith('default'));
  const same4 = run('same', 4);
  const diff4 = run('different', 4);
  const c16 = run('same', 16);
  const fastestHead = Math.min(...r.forwards.filter((f) => f.part === 'head' && f.p50).map((f) => f.p50!));
  return {
    baseline_rps: round(base),
    baseline_default_threads_rps: round(appBase),
    same_text_c4_rps: round(same4?.requests_per_s),
    same_text_c4_vs_baseline: round(same4 && base ? same4.requests_per_s / base : undefined),
    different_text_c4_rps: round(diff4?.requests_per_s),
    different_text_c4_vs_baseline: round(diff4 && base ? diff4.requests_per_s / base : undefined),
    int8_same_text_c4_rps: round(int8Same4?.requests_per_s),
    int8_vs_fp32_same_text_c4: round(int8Same4 && same4 ? int8Same4.requests_per_s / same4.requests_per_s : undefined),
    int8_different_text_c4_rps: round(int8Diff4?.requests_per_s),
    int8_vs_fp32_different_text_c4: round(int8Diff4 && diff4 ? int8Diff4.requests_per_s / diff4.requests_per_s : undefined),
    int8_peak_rss_mb: round(Math.max(...r.runs.filter((x) => x.precision === 'int8').map((x) => x.peak_rss_mb))),
    int8_top1_agreement_default_model: round(demoAgreement?.top1_agreement_worst),
    int8_max_abs_delta_p_full_model: round(fullAgreement?.max_abs_delta_p),
    peak_rss_mb: round(Math.max(...r.runs.filter((x) => (x.workers ?? 1) === 1 && (x.precision ?? 'fp32') === 'fp32').map((x) => x.peak_rss_mb))),
    c16_p99_over_p50: round(c16 ? c16.p99_ms / c16.p50_ms : undefined),
    health_p99_ms: round(Math.max(...r.runs.map((x) => x.health_p99_ms))),
    service_head_forward_ms_c1: round(run('same', 1)?.head_forward_ms ?? same4?.head_forward_ms),
    fastest_head_forward_ms: round(fastestHead),
    two_workers_same_text_c4_rps: round(run('same', 4, 2)?.requests_per_s),
    two_workers_vs_one: round(run('same', 4, 2) && same4 ? run('same', 4, 2)!.requests_per_s / same4.requests_per_s : undefined),
  };
}
