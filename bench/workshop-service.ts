// `npm run bench`'s study of the service on the workshop's full-size model (ResNet18 + BERT-base, random weights,
// exported into a temporary folder), against the workshop's own app measured in the same run:
//   1. the baseline: Python torch's eager forward of the whole model, one at a time, as the workshop's app runs
//      it (bench/workshop_baseline.py on Debian's python3-torch, the environment as it is); its rate is 1/p50.
//      Measured with torch's own thread count (as the app runs) and with THREADS, as the service gets.
//   2. the service's forwards, batch 1, on every backend at hand: the head (what a request with a known text
//      costs) and the text encoder (what a new text adds). The fastest is what the service's default is held to.
//   3. the service with its defaults (THREADS fixed): distinct photos at each concurrency, (a) the same text on
//      every request, (b) a different text on every request; req/s, p50/p99, /health's latency from another
//      process, peak RSS, and from /metrics where the time went (forward, batch size, preprocessing, queue).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { startServer } from '../test/helpers/server.js';
import { stats, type Stats } from './results.js';

export interface WorkshopServicePlan {
  repo: string;
  /** The full-size model folder (export_model.py --random full). */
  modelDir: string;
  /** ../shared/data (its food photos are the uploads), or a folder that lacks them (synthetic photos then). */
  sharedData: string;
  workDir: string;
  threads: number;
  concurrencies: number[];
  durationS: number;
  baselineIters: number;
  forwardIters: number;
  /** LibTorch builds to measure the forwards with: label -> addon file (the first is the service's, Debian's). */
  addons: { label: string; addon: string }[];
  progress(message: string): void;
}

export interface BaselineRow extends Stats {
  threads: string;
  torch: string;
  requests_per_s: number;
}

export interface PartForwardRow extends Partial<Stats> {
  part: 'head' | 'text_encoder';
  backend: string;
  /** The BLAS kernel LibTorch used, and why; empty for ONNX Runtime. */
  blas?: string;
  error?: string;
}

export interface WorkshopServiceRow {
  /** Worker processes (WORKERS) and threads each: 1 x 2 (the default) or 2 x 1. */
  workers: number;
  threads: number;
  text: 'same' | 'different';
  concurrency: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  requests: number;
  health_p50_ms: number;
  health_p99_ms: number;
  peak_rss_mb: number;
  /** From /metrics over the run: mean forward (ms) and mean batch size per model part; mean preprocessing. */
  head_forward_ms?: number;
  head_batch?: number;
  text_forward_ms?: number;
  text_batch?: number;
  preprocess_ms?: number;
  queue_ms?: number;
}

export interface WorkshopServiceResults {
  model: string;
  photos: string;
  service: { backend: string; layout: string; threads: number; runtime: string };
  baseline: BaselineRow[];
  forwards: PartForwardRow[];
  runs: WorkshopServiceRow[];
}

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

function runJson<T>(command: string, argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${path.basename(command)} ${argv.slice(0, 3).join(' ')} exited with ${code}: ${stderr.slice(-1500)}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${command}: no JSON line: ${stdout.slice(-500)} ${stderr.slice(-500)}`));
      }
    });
  });
}

async function baseline(plan: WorkshopServicePlan): Promise<BaselineRow[]> {
  const rows: BaselineRow[] = [];
  for (const threads of ['default', String(plan.threads)]) {
    plan.progress(`[workshop model] baseline: Python torch eager forward, threads ${threads}`);
    const out = await runJson<{ times_ms: number[]; threads: number; torch: string }>(
      '/usr/bin/python3',
      ['bench/workshop_baseline.py', '--threads', threads, '--iters', String(plan.baselineIters)],
      process.env,
      plan.repo,
    );
    const s = stats(out.times_ms);
    rows.push({
      threads: threads === 'default' ? `torch's default (${out.threads})` : String(out.threads),
      torch: out.torch,
      ...s,
      requests_per_s: 1000 / s.p50,
    });
    plan.progress(`   p50 ${s.p50.toFixed(0)} ms: ${(1000 / s.p50).toFixed(2)} req/s`);
  }
  return rows;
}

/** An inputs folder for a part: the head takes (image, text features), the text encoder (input_ids, mask). */
function partInputs(plan: WorkshopServicePlan, part: 'head' | 'text_encoder'): string {
  const dir = path.join(plan.workDir, `inputs-${part}`);
  mkdirSync(dir, { recursive: true });
  const meta = JSON.parse(readFileSync(path.join(plan.modelDir, 'model.json'), 'utf8')) as { config: { hidden_size: number }; max_length: number };
  const L = meta.max_length;
  const inputs: { name: string; dtype: string; shape: number[]; data: Float32Array | BigInt64Array }[] = [];
  if (part === 'head') {
    const image = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.37));
    const features = new Float32Array(L * meta.config.hidden_size).map((_, i) => Math.cos(i * 0.11));
    inputs.push(
      { name: 'image', dtype: 'float32', shape: [1, 3, 224, 224], data: image },
      { name: 'text_features', dtype: 'float32', shape: [1, L, meta.config.hidden_size], data: features },
    );
  } else {
    const ids = new BigInt64Array(L);
    const mask = new BigInt64Array(L);
    for (const [i, id] of [101n, 3746n, 1997n, 2833n, 102n].entries()) {
      ids[i] = id;
      mask[i] = 1n;
    }
    inputs.push({ name: 'input_ids', dtype: 'int64', shape: [1, L], data: ids }, { name: 'attention_mask', dtype: 'int64', shape: [1, L], data: mask });
  }
  for (const input of inputs) writeFileSync(path.join(dir, `${input.name}.bin`), Buffer.from(input.data.buffer));
  writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ inputs: inputs.map(({ data: _d, ...s }) => ({ ...s, file: `${s.name}.bin` })) }));
  return dir;
}

async function forwards(plan: WorkshopServicePlan): Promise<PartForwardRow[]> {
  const rows: PartForwardRow[] = [];
  const variants: { backend: string; args: string[]; env: NodeJS.ProcessEnv; ext: string }[] = [
    { backend: 'ONNX Runtime (worker thread)', args: ['--backend', 'onnx'], env: {}, ext: 'onnx' },
  ];
  for (const [i, { label, addon }] of plan.addons.entries()) {
    variants.push({ backend: `addon, ${label}`, args: ['--backend', 'torch'], env: { TORCH_NODE_ADDON: addon }, ext: 'pth' });
    // Debian's LibTorch as a fresh machine has it: OPENBLAS_CORETYPE unset, the library choosing the kernel.
    if (i === 0 && process.env.OPENBLAS_CORETYPE) {
      variants.push({
        backend: `addon, ${label}, OPENBLAS_CORETYPE unset (kernel chosen by the library)`,
        args: ['--backend', 'torch'],
        env: { TORCH_NODE_ADDON: addon, OPENBLAS_CORETYPE: '' },
        ext: 'pth',
      });
    }
  }
  for (const part of ['head', 'text_encoder'] as const) {
    const inputs = partInputs(plan, part);
    for (const v of variants) {
      plan.progress(`[workshop model] ${part} forward, batch 1, ${plan.threads} threads: ${v.backend}`);
      const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(plan.threads), ...v.env };
      if (env.OPENBLAS_CORETYPE === '') delete env.OPENBLAS_CORETYPE;
      const iters = part === 'head' ? plan.forwardIters * 3 : plan.forwardIters;
      const argv = [
        '--import',
        'tsx',
        'bench/latency-node.ts',
        ...v.args,
        '--model',
        path.join(plan.modelDir, `${part}.${v.ext}`),
        '--inputs',
        inputs,
        '--threads',
        String(plan.threads),
        '--warmup',
        '3',
        '--iters',
        String(iters),
      ];
      try {
        const out = await runJson<{ times_ms: number[]; blas?: string }>(process.execPath, argv, env, plan.repo);
        rows.push({ part, backend: v.backend, blas: out.blas, ...stats(out.times_ms) });
        plan.progress(`   p50 ${stats(out.times_ms).p50.toFixed(1)} ms${out.blas ? ` (${out.blas})` : ''}`);
      } catch (err) {
        rows.push({ part, backend: v.backend, error: (err as Error).message.split('\n')[0] });
        plan.progress(`   failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
  return rows;
}

/** Sums and counts of /metrics' histograms, to difference before and after a run. */
async function histogramTotals(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const totals: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m =
      /^(inference_forward_seconds|inference_batch_size|predict_preprocess_seconds|predict_queue_seconds)_(sum|count)(\{model="(\w+)"\})? ([\d.e+-]+)$/.exec(
        line,
      );
    if (m) totals[`${m[1]}${m[4] ? `:${m[4]}` : ''}_${m[2]}`] = Number(m[5]);
  }
  return totals;
}

/** The process and its descendants (WORKERS: the primary and its workers). */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (const task of (() => {
    try {
      return readdirSync(`/proc/${pid}/task`);
    } catch {
      return [];
    }
  })()) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      // gone
    }
    for (const child of children.split(/\s+/).filter(Boolean).map(Number)) pids.push(...processTree(child));
  }
  return pids;
}

/** The peak resident size (VmHWM) of the service's processes, summed. */
function peakRssMb(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      kb += Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // not permitted: the peak is then the peak so far
    }
  }
}

async function serviceRuns(
  plan: WorkshopServicePlan,
  photos: string,
  shape: { workers: number; concurrencies: number[] },
): Promise<{ runs: WorkshopServiceRow[]; service: WorkshopServiceResults['service'] }> {
  // The service as a user starts it: `node dist/server/main.js`, its defaults, the model folder and THREADS set
  // (with WORKERS, the threads divided among the workers).
  const threads = Math.max(1, Math.floor(plan.threads / shape.workers));
  const server = await startServer({ MODEL_DIR: plan.modelDir, THREADS: String(threads), WORKERS: String(shape.workers) }, plan.repo, {
    entry: 'dist',
    cleanEnv: true,
  });
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
      runJson<{ requests: number; errors: number; requests_per_s?: number } & Stats>(
        process.execPath,
        ['--import', 'tsx', 'bench/load-client.ts', '--url', server.url, '--seconds', String(seconds), ...extra],
        process.env,
        plan.repo,
      );
    await client(['--photos', photos, '--concurrency', '2', '--text', 'same'], 2); // warm-up
    for (const text of ['same', 'different'] as const) {
      for (const concurrency of shape.concurrencies) {
        plan.progress(`[workshop model] the service (${shape.workers} x ${threads} threads), ${text} text, concurrency ${concurrency}, ${plan.durationS} s`);
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

export async function workshopService(plan: WorkshopServicePlan): Promise<WorkshopServiceResults> {
  mkdirSync(plan.workDir, { recursive: true });
  const photos = await photoFolder(plan);
  const base = await baseline(plan);
  const parts = await forwards(plan);
  const { runs, service } = await serviceRuns(plan, photos.dir, { workers: 1, concurrencies: plan.concurrencies });
  // The other way to use the cores: two workers of one thread each (WORKERS=2), at concurrency 4.
  const two = await serviceRuns(plan, photos.dir, { workers: 2, concurrencies: [4] });
  runs.push(...two.runs);
  return {
    model: 'full-size workshop model (ResNet18 + BERT-base, 132.5 M parameters, random weights)',
    photos: photos.label,
    service,
    baseline: base,
    forwards: parts,
    runs,
  };
}

/** The headline figures: rates against the baseline at THREADS, the targets of the issue that asked for them. */
export function workshopHeadlines(r: WorkshopServiceResults | undefined): Record<string, number | null> | null {
  if (!r) return null;
  const round = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : Math.round(v * 1000) / 1000);
  const base = r.baseline.at(-1)?.requests_per_s;
  const appBase = r.baseline[0]?.requests_per_s;
  const run = (text: string, c: number, workers = 1) => r.runs.find((x) => x.text === text && x.concurrency === c && (x.workers ?? 1) === workers);
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
    peak_rss_mb: round(Math.max(...r.runs.filter((x) => (x.workers ?? 1) === 1).map((x) => x.peak_rss_mb))),
    c16_p99_over_p50: round(c16 ? c16.p99_ms / c16.p50_ms : undefined),
    health_p99_ms: round(Math.max(...r.runs.map((x) => x.health_p99_ms))),
    service_head_forward_ms_c1: round(run('same', 1)?.head_forward_ms ?? same4?.head_forward_ms),
    fastest_head_forward_ms: round(fastestHead),
    two_workers_same_text_c4_rps: round(run('same', 4, 2)?.requests_per_s),
    two_workers_vs_one: round(run('same', 4, 2) && same4 ? run('same', 4, 2)!.requests_per_s / same4.requests_per_s : undefined),
  };
}
