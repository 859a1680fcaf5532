// `npm run bench`: how fast is native LibTorch from Node, against ONNX Runtime and against Python? Side by side
// in one run, on this machine as it is (shared and noisy: rounds are interleaved and medians reported).
//
//  1. Model latency, batch 1 and 8, 1 and 2 threads: the C++ floor (bench/native/floor.cc calling LibTorch
//     directly), the addon from Node, onnxruntime-node (in its worker thread, and on the main thread), and
//     Python torch; for Debian's LibTorch 1.13 and, where installed, a pip torch 2.x. On the default model and on
//     the full-size workshop architecture (random weights, exported into a temporary folder).
//  2. The options of each backend on the full model (freezing, oneDNN, OpenMP's wait policy, OpenBLAS's core
//     type), each checked to give the same outputs.
//  3. The event loop's delay while each backend computes.
//  4. The HTTP service under autocannon, concurrency 1, 4 and 16, each backend, with and without cache hits.
//  5. The service on the full-size workshop model against the workshop's own app (bench/workshop-service.ts):
//     distinct photos, the same text or a different one on every request, concurrency 1, 4 and 16.
// Results: bench/results/<name>.json, .md and .svg (and <name>-service.svg); the last line of stdout is one
// JSON object of headlines.
//
//   npm run bench [-- --quick] [-- --help]
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import autocannon from 'autocannon';
import sharp from 'sharp';

import { TextTokenizer } from '../src/classifier/tokenizer.js';
import { VARIABLES as SERVICE_VARIABLES } from '../src/server/config.js';
import { renderMarkdown, renderSvg, updateReadme } from './report.js';
import { stats, type BenchResults, type LatencyRow, type OptionRow, type ServiceRow } from './results.js';
import { workshopSvg } from './workshop-report.js';
import { workshopHeadlines, workshopService } from './workshop-service.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED_DATA = path.resolve(REPO, process.env.TORCH_NODE_SHARED_DATA || path.join('..', 'shared', 'data'));

const USAGE = `Usage: npm run bench [-- options]

  --quick            a few minutes: the default model, batch 1, 2 threads, Debian's LibTorch, the service at
                     concurrency 4, and the service on the full-size model at concurrency 4 (writes
                     bench/results/quick.*; a full run writes bench/results/latest.* and the README's table)
  --no-full-model    skip the full-size workshop architecture (its latency and its service)
  --no-torch2        skip the pip torch 2.x (TORCH2_PYTHON names its python; default the one of
                     npm run test:libtorch2, ~/.cache/torchscript-node/torch-2.15.0/bin/python)
  --no-service       skip the HTTP service (both studies: the default model's and the full-size model's)
  --rounds N         interleaved rounds of every latency measurement on the default model (default 4;
                     quick 1; the full model: 3 at batch 1, 2 at batch 8)
  --iters N          timed forwards a measurement on the default model (default 20; the full model: 5
                     at batch 1, 3 at batch 8). Many short rounds rather than few long ones: this
                     machine's speed drifts by minutes (a shared VM), and interleaving spreads it evenly
  --duration S       seconds of each autocannon run (default 10; quick 3)
  --out DIR          where the results go (default bench/results)
  --render           measure nothing: write latest.md, latest.svg and the README's table again from
                     latest.json (after a change to the report's format)`;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-full-model': { type: 'boolean', default: false },
    'no-torch2': { type: 'boolean', default: false },
    'no-service': { type: 'boolean', default: false },
    rounds: { type: 'string' },
    iters: { type: 'string' },
    duration: { type: 'string' },
    out: { type: 'string', default: path.join(REPO, 'bench', 'results') },
    render: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
if (args.render) {
  const saved = JSON.parse(readFileSync(path.join(args.out, 'latest.json'), 'utf8')) as BenchResults;
  writeFileSync(path.join(args.out, 'latest.svg'), renderSvg(saved));
  const savedServiceSvg = saved.workshop_service ? 'latest-service.svg' : undefined;
  if (saved.workshop_service) {
    writeFileSync(
      path.join(args.out, 'latest-service.svg'),
      workshopSvg(saved.workshop_service, `${saved.machine.cpu}, ${saved.machine.cores} cores; ${saved.date.slice(0, 10)}; ${saved.command}`),
    );
  }
  writeFileSync(path.join(args.out, 'latest.md'), renderMarkdown(saved, 'latest.svg', savedServiceSvg));
  if (args.out === path.join(REPO, 'bench', 'results')) {
    updateReadme(path.join(REPO, 'README.md'), saved, 'bench/results/latest.svg', savedServiceSvg && 'bench/results/latest-service.svg');
  }
  console.error(`bench: rendered ${path.join(args.out, 'latest')}.{md,svg} from latest.json`);
  process.exit(0);
}
const quick = args.quick;
function positiveInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`Expected a positive integer for --${name} but received '${value}'\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}
const rounds = positiveInteger(args.rounds, 'rounds', quick ? 1 : 4);
const iters = positiveInteger(args.iters, 'iters', 20);
const duration = positiveInteger(args.duration, 'duration', quick ? 3 : 10);
const threadCounts = quick ? [2] : [1, 2];
const batches = quick ? [1] : [1, 8];
const started = Date.now();

function progress(message: string): void {
  const s = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`[bench ${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${message}\n`);
}

// --- what can be measured here -----------------------------------------------------------------------------

const DEBIAN_PYTHON = '/usr/bin/python3';
const TORCH2_PYTHON = process.env.TORCH2_PYTHON || path.join(os.homedir(), '.cache', 'torchscript-node', 'torch-2.15.0', 'bin', 'python');
const ADDON_113 = path.join(REPO, 'build', 'cmake', 'Release', 'torch_node.node');
const ADDON_2 = path.join(REPO, 'build', 'torch2', 'Release', 'torch_node.node');
const FLOOR_113 = path.join(REPO, 'build', 'bench', 'floor');
const FLOOR_2 = path.join(REPO, 'build', 'bench', 'floor-torch2');
const TSX = ['--import', 'tsx'];

function sh(command: string, argv: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(command, argv, { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Stack {
  /** e.g. "LibTorch 1.13 (Debian)" */
  label: string;
  key: 'debian' | 'torch2';
  addon: string;
  floor: string;
  python: string;
}

function stacks(): Stack[] {
  progress("building the C++ floor against Debian's LibTorch (bench/build-floor.mjs)");
  sh(process.execPath, ['bench/build-floor.mjs', '--out', FLOOR_113], { LIBTORCH_DIR: '', TORCH_PYTHON: '' });
  const list: Stack[] = [{ label: 'LibTorch 1.13 (Debian)', key: 'debian', addon: ADDON_113, floor: FLOOR_113, python: DEBIAN_PYTHON }];
  if (quick || args['no-torch2']) return list;
  if (!existsSync(TORCH2_PYTHON)) {
    progress(`no pip torch 2.x to compare (${TORCH2_PYTHON}: npm run test:libtorch2 installs one, or set TORCH2_PYTHON): skipped`);
    return list;
  }
  // Incremental: seconds when nothing changed, and never an addon older than the sources.
  progress(`building the addon against ${TORCH2_PYTHON}'s LibTorch into build/torch2 (a few minutes the first time)`);
  sh(process.execPath, ['node_modules/cmake-js/bin/cmake-js', 'compile', '--out', 'build/torch2'], { TORCH_PYTHON: TORCH2_PYTHON, LIBTORCH_DIR: '' });
  progress(`building the C++ floor against ${TORCH2_PYTHON}'s LibTorch`);
  sh(process.execPath, ['bench/build-floor.mjs', '--out', FLOOR_2], { TORCH_PYTHON: TORCH2_PYTHON, LIBTORCH_DIR: '' });
  const version = sh(TORCH2_PYTHON, ['-c', 'import torch; print(torch.__version__.split("+")[0])']).trim();
  list.push({ label: `LibTorch ${version} (PyPI torch)`, key: 'torch2', addon: ADDON_2, floor: FLOOR_2, python: TORCH2_PYTHON });
  return list;
}

// --- models and their inputs -------------------------------------------------------------------------------

interface BenchModel {
  key: 'demo' | 'full';
  label: string;
  dir: string;
  /** Rounds, timed forwards and warm-up forwards of one measurement at a batch size. */
  plan(batch: number): { rounds: number; iters: number; warmup: number };
}

async function fullModel(): Promise<BenchModel | undefined> {
  const vocab = path.join(SHARED_DATA, 'bert-base-uncased', 'vocab.txt');
  if (!existsSync(vocab)) {
    progress(`the full-size model needs ${vocab} (bert-base-uncased's vocabulary): skipped`);
    return undefined;
  }
  // Exported once per version of the exporter (export_model.py and every module of scripts/foodmodel) into a temporary
  // folder (1.6 GB; never committed) and reused.
  const foodmodel = readdirSync(path.join(REPO, 'scripts', 'foodmodel')).filter((f) => f.endsWith('.py'));
  const exporter = ['scripts/export_model.py', ...foodmodel.sort().map((f) => `scripts/foodmodel/${f}`)]
    .map((f) => readFileSync(path.join(REPO, f)))
    .reduce((h, b) => h.update(b), createHash('sha256'))
    .digest('hex')
    .slice(0, 12);
  const dir = path.join(os.tmpdir(), `torchscript-node-bench-full-${exporter}`);
  if (!existsSync(path.join(dir, 'model.json'))) {
    progress(`exporting the full-size workshop architecture with random weights into ${dir} (about a minute, 1.6 GB)`);
    rmSync(dir, { recursive: true, force: true });
    await runStreaming(path.join(REPO, '.venv', 'bin', 'python'), ['scripts/export_model.py', '--random', 'full', '--vocab', vocab, '--out', dir]);
  } else {
    progress(`full-size model: reusing ${dir}`);
  }
  return {
    key: 'full',
    label: 'full-size workshop model (ResNet18 + BERT-base, 132.5 M parameters, random weights)',
    dir,
    // A forward takes 0.2-1 s at batch 1 and several seconds at batch 8 here.
    plan: (batch) => (batch === 1 ? { rounds: Math.min(rounds, 3), iters: 5, warmup: 2 } : { rounds: Math.min(rounds, 2), iters: 3, warmup: 1 }),
  };
}

function runStreaming(command: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${argv.join(' ')} exited with ${code}`))));
  });
}

/** Deterministic standard-normal floats (an LCG and Box-Muller), so every run times the very same inputs. */
function normal(n: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/** An inputs folder (spec.json + raw little-endian .bin files) for a model folder and a batch size. */
async function writeInputs(model: BenchModel, batch: number, root: string): Promise<string> {
  const dir = path.join(root, `${model.key}-b${batch}`);
  mkdirSync(dir, { recursive: true });
  const meta = JSON.parse(readFileSync(path.join(model.dir, 'model.json'), 'utf8')) as { max_length?: number; preprocessing?: { crop?: number } };
  const maxLength = meta.max_length ?? 128;
  const crop = meta.preprocessing?.crop ?? 224;
  const tokenizer = await TextTokenizer.fromVocab(path.join(model.dir, 'vocab.txt'), { maxLength });
  const { inputIds, attentionMask } = await tokenizer.encode('Image of food');
  const repeat = (a: BigInt64Array) => {
    const out = new BigInt64Array(a.length * batch);
    for (let i = 0; i < batch; i++) out.set(a, i * a.length);
    return out;
  };
  const inputs = [
    { name: 'image', dtype: 'float32', shape: [batch, 3, crop, crop], data: normal(batch * 3 * crop * crop, 42) },
    { name: 'input_ids', dtype: 'int64', shape: [batch, maxLength], data: repeat(inputIds) },
    { name: 'attention_mask', dtype: 'int64', shape: [batch, maxLength], data: repeat(attentionMask) },
  ];
  for (const input of inputs) writeFileSync(path.join(dir, `${input.name}.bin`), Buffer.from(input.data.buffer));
  writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ inputs: inputs.map(({ data: _data, ...s }) => ({ ...s, file: `${s.name}.bin` })) }));
  return dir;
}

// --- one latency measurement ---------------------------------------------------------------------------------

interface RunnerOutput {
  runner: string;
  times_ms: number[];
  output_sum: number;
  libtorch?: string;
  onnxruntime?: string;
  eventloop_delay_ms?: { p50: number; p99: number; max: number };
}

interface Runner {
  /** e.g. "addon (LibTorch 1.13 (Debian))" */
  name: string;
  kind: 'cpp' | 'addon' | 'onnx' | 'onnx-main' | 'python';
  stack: string;
  command(model: string, inputs: string, threads: number, opts: { iters: number; warmup: number; extra?: string[] }): [string, string[], NodeJS.ProcessEnv];
}

function runnersFor(list: Stack[]): Runner[] {
  const runners: Runner[] = [];
  const common = (file: string, inputs: string, threads: number, o: { iters: number; warmup: number; extra?: string[] }) => [
    '--model',
    file,
    '--inputs',
    inputs,
    '--threads',
    String(threads),
    '--warmup',
    String(o.warmup),
    '--iters',
    String(o.iters),
    ...(o.extra ?? []),
  ];
  for (const s of list) {
    runners.push({
      name: `C++ floor, ${s.label}`,
      kind: 'cpp',
      stack: s.key,
      command: (dir, inputs, threads, o) => [s.floor, common(path.join(dir, 'best_model.pth'), inputs, threads, o), {}],
    });
    runners.push({
      name: `addon from Node, ${s.label}`,
      kind: 'addon',
      stack: s.key,
      command: (dir, inputs, threads, o) => [
        process.execPath,
        [...TSX, 'bench/latency-node.ts', '--backend', 'torch', ...common(path.join(dir, 'best_model.pth'), inputs, threads, o)],
        { TORCH_NODE_ADDON: s.addon },
      ],
    });
    runners.push({
      name: `Python torch, ${s.label.replace('LibTorch', 'torch')}`,
      kind: 'python',
      stack: s.key,
      command: (dir, inputs, threads, o) => [s.python, ['bench/torch_runner.py', ...common(path.join(dir, 'best_model.pth'), inputs, threads, o)], {}],
    });
  }
  runners.push({
    name: 'onnxruntime-node (worker thread)',
    kind: 'onnx',
    stack: 'onnx',
    command: (dir, inputs, threads, o) => [
      process.execPath,
      [...TSX, 'bench/latency-node.ts', '--backend', 'onnx', ...common(path.join(dir, 'best_model.onnx'), inputs, threads, o)],
      {},
    ],
  });
  runners.push({
    name: 'onnxruntime-node (main thread)',
    kind: 'onnx-main',
    stack: 'onnx',
    command: (dir, inputs, threads, o) => [
      process.execPath,
      [...TSX, 'bench/latency-node.ts', '--backend', 'onnx-main', ...common(path.join(dir, 'best_model.onnx'), inputs, threads, o)],
      {},
    ],
  });
  return runners;
}

/**
 * The environment every measurement runs in: what the caller set (OPENBLAS_CORETYPE kept), OpenMP and MKL
 * pinned to the measurement's threads. OpenBLAS is not pinned: Debian's is the OpenMP build, which follows
 * OMP_NUM_THREADS as LibTorch does (as in production).
 */
function measurementEnv(threads: number, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), ...extra };
}

function measure(command: string, argv: string[], env: NodeJS.ProcessEnv): Promise<RunnerOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.once('error', reject);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${path.basename(command)} ${argv.slice(0, 4).join(' ')} ... exited with ${code}:\n${stderr.slice(-2000)}`));
      try {
        resolve(JSON.parse(last) as RunnerOutput);
      } catch {
        reject(new Error(`${command}: no JSON line in its output:\n${stdout.slice(-1000)}\n${stderr.slice(-1000)}`));
      }
    });
  });
}

// --- 1. the latency matrix -----------------------------------------------------------------------------------

async function latencyMatrix(models: BenchModel[], runners: Runner[], inputsRoot: string): Promise<LatencyRow[]> {
  const rows: LatencyRow[] = [];
  const total = models.length * threadCounts.length * batches.length;
  let step = 0;
  for (const model of models) {
    for (const batch of batches) {
      const inputs = await writeInputs(model, batch, inputsRoot);
      for (const threads of threadCounts) {
        step++;
        // ONNX Runtime on the main thread is timed at batch 1 only: it is there for the event loop's delay.
        const active = runners.filter((r) => r.kind !== 'onnx-main' || batch === 1);
        const times = new Map<Runner, number[]>(active.map((r) => [r, []]));
        const outputs = new Map<Runner, RunnerOutput>();
        const failures = new Map<Runner, string>();
        const plan = model.plan(batch);
        for (let round = 0; round < plan.rounds; round++) {
          // Rotated each round, so that no runner always goes first (or last) on a machine whose load drifts.
          const order = active.map((_, i) => active[(i + round) % active.length]);
          for (const runner of order) {
            if (failures.has(runner)) continue;
            progress(`[${step}/${total}] ${model.key} model, batch ${batch}, ${threads} thread(s), round ${round + 1}/${plan.rounds}: ${runner.name}`);
            const [command, argv, env] = runner.command(model.dir, inputs, threads, plan);
            try {
              const out = await measure(command, argv, measurementEnv(threads, env));
              times.get(runner)!.push(...out.times_ms);
              outputs.set(runner, out);
            } catch (err) {
              // One runner failing (a missing interpreter, an unsupported option) must not cost the whole run.
              const message = (err as Error).message.split('\n').slice(0, 3).join(' ');
              failures.set(runner, message);
              progress(`   failed: ${message}`);
            }
          }
        }
        const measured = active.filter((r) => outputs.has(r));
        const reference = measured.length ? outputs.get(measured[0])!.output_sum : 0;
        for (const [runner, error] of failures) {
          rows.push({
            model: model.key,
            batch,
            threads,
            runner: runner.name,
            kind: runner.kind,
            stack: runner.stack,
            version: '',
            n: 0,
            p50: NaN,
            p95: NaN,
            p99: NaN,
            mean: NaN,
            output_matches: false,
            error,
          });
        }
        for (const runner of measured) {
          const out = outputs.get(runner)!;
          rows.push({
            model: model.key,
            batch,
            threads,
            runner: runner.name,
            kind: runner.kind,
            stack: runner.stack,
            version: out.libtorch ?? out.onnxruntime ?? '',
            ...stats(times.get(runner)!),
            eventloop_p99_ms: out.eventloop_delay_ms?.p99,
            output_matches: Math.abs(out.output_sum - reference) <= 1e-3 * Math.max(1, Math.abs(reference)),
          });
        }
        const here = (x: LatencyRow) => x.model === model.key && x.batch === batch && x.threads === threads && !x.error;
        const floor = rows.find((r) => here(r) && r.kind === 'cpp' && r.stack === 'debian');
        for (const r of rows.filter(here)) {
          const own = rows.find((x) => here(x) && x.kind === 'cpp' && x.stack === r.stack) ?? floor;
          if (own) r.vs_floor = r.p50 / own.p50;
          if (floor) r.vs_debian_floor = r.p50 / floor.p50;
        }
        progress(
          `   ${model.key} b${batch} t${threads}: ` +
            rows
              .filter(here)
              .map((r) => `${r.runner} ${r.p50.toFixed(1)} ms`)
              .join('; '),
        );
      }
    }
  }
  return rows;
}

// --- 2. the options of each backend ----------------------------------------------------------------------------

async function optionsStudy(model: BenchModel, list: Stack[], inputsRoot: string): Promise<OptionRow[]> {
  const inputs = await writeInputs(model, 1, inputsRoot);
  const threads = 2;
  // Three times a batch-1 measurement: each option runs once, so it gets the longer sample.
  const o = { iters: model.plan(1).iters * 3, warmup: model.plan(1).warmup };
  const variants: { stack: Stack | undefined; option: string; command: [string, string[]]; env: NodeJS.ProcessEnv }[] = [];
  const common = (file: string, extra: string[] = []) => [
    '--model',
    file,
    '--inputs',
    inputs,
    '--threads',
    String(threads),
    '--warmup',
    String(o.warmup),
    '--iters',
    String(o.iters),
    ...extra,
  ];
  for (const s of list) {
    const pth = path.join(model.dir, 'best_model.pth');
    const floor = (option: string, extra: string[], env: NodeJS.ProcessEnv = {}) =>
      variants.push({ stack: s, option, command: [s.floor, common(pth, extra)], env });
    floor('traced only (no freeze, no optimize_for_inference)', ['--no-optimize']);
    floor("frozen + optimize_for_inference (the addon's default)", []);
    // oneDNN Graph fusion goes with freezing alone: with optimize_for_inference as well, torch 2.x fails on the
    // first forward; Debian's 1.13 has no oneDNN fuser (the row then says so).
    floor('frozen (no optimize_for_inference) + oneDNN Graph fusion', ['--onednn']);
    floor('frozen + optimized, OMP_WAIT_POLICY=PASSIVE', [], { OMP_WAIT_POLICY: 'PASSIVE' });
    if (s.key === 'debian') {
      // OpenBLAS picks its kernels by CPU; OPENBLAS_CORETYPE overrides that (some environments pin Haswell, as
      // older OpenBLAS builds can compute wrong results on newer CPUs). Both are run; outputs are compared.
      const current = process.env.OPENBLAS_CORETYPE;
      const environment = `(environment: ${current ?? 'unset'})`;
      if (current) floor(`frozen + optimized, OPENBLAS_CORETYPE unset ${environment}`, [], { OPENBLAS_CORETYPE: '' });
      for (const core of ['Haswell', 'SkylakeX']) {
        if (core !== current) floor(`frozen + optimized, OPENBLAS_CORETYPE=${core} ${environment}`, [], { OPENBLAS_CORETYPE: core });
      }
    }
  }
  variants.push({
    stack: undefined,
    option: 'onnxruntime-node, all graph optimisations (the default)',
    command: [process.execPath, [...TSX, 'bench/latency-node.ts', '--backend', 'onnx', ...common(path.join(model.dir, 'best_model.onnx'))]],
    env: {},
  });
  const rows: OptionRow[] = [];
  for (const [i, v] of variants.entries()) {
    progress(`[options ${i + 1}/${variants.length}] ${model.key} model, batch 1, ${threads} threads: ${v.stack?.label ?? 'ONNX Runtime'}: ${v.option}`);
    const [command, argv] = v.command;
    try {
      const env = measurementEnv(threads, v.env);
      for (const [k, value] of Object.entries(v.env)) if (value === '') delete env[k];
      const out = await measure(command, argv, env);
      rows.push({ stack: v.stack?.label ?? `ONNX Runtime ${out.onnxruntime ?? ''}`, option: v.option, ...stats(out.times_ms), output_sum: out.output_sum });
    } catch (err) {
      rows.push({ stack: v.stack?.label ?? 'ONNX Runtime', option: v.option, error: (err as Error).message.split('\n').slice(0, 3).join(' ') });
    }
  }
  const reference = rows.find((r) => r.output_sum !== undefined)?.output_sum ?? 0;
  for (const r of rows) if (r.output_sum !== undefined) r.output_matches = Math.abs(r.output_sum - reference) <= 1e-3 * Math.max(1, Math.abs(reference));
  return rows;
}

// --- 4. the HTTP service ---------------------------------------------------------------------------------------

async function uploadBody(): Promise<{ body: Buffer; contentType: string; photo: string }> {
  const sample = path.join(SHARED_DATA, 'samples', 'pexels-valeriya-1639557.jpg');
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

async function startService(backend: 'torch' | 'onnx', cache: boolean): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const main = existsSync(path.join(REPO, 'dist', 'server', 'main.js')) ? ['dist/server/main.js'] : [...TSX, 'src/server/main.ts'];
  // The service's defaults, whatever the caller's environment holds: only what is set here differs.
  const env = measurementEnv(2, {});
  for (const v of SERVICE_VARIABLES) delete env[v.name];
  Object.assign(env, {
    PORT: '0',
    MODEL_DIR: path.join(REPO, 'models'),
    DEVICE: 'cpu',
    BACKEND: backend,
    THREADS: '2',
    LOG_LEVEL: 'info',
    PREDICTION_CACHE_SIZE: cache ? '100' : '0',
    ENV_FILE: '/dev/null',
    TORCH_NODE_ADDON: ADDON_113,
  });
  const child = spawn(process.execPath, main, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

async function serviceLoad(): Promise<{ rows: ServiceRow[]; photo: string }> {
  const { body, contentType, photo } = await uploadBody();
  const concurrencies = quick ? [4] : [1, 4, 16];
  const rows: ServiceRow[] = [];
  const plans = (['torch', 'onnx'] as const).flatMap((backend) => [false, true].map((cache) => ({ backend, cache })));
  for (const [i, plan] of plans.entries()) {
    let service: Awaited<ReturnType<typeof startService>>;
    try {
      service = await startService(plan.backend, plan.cache);
    } catch (err) {
      progress(`   the service (BACKEND=${plan.backend}) did not start: ${(err as Error).message.split('\n')[0]}`);
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
      for (const connections of concurrencies) {
        progress(`[service ${i + 1}/${plans.length}] BACKEND=${plan.backend}, cache ${plan.cache ? 'hits' : 'off'}, concurrency ${connections}, ${duration} s`);
        resetPeakRss(service.pid);
        const r = await fire(connections, duration);
        rows.push({
          backend: plan.backend,
          cache: plan.cache ? 'hits' : 'off',
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

// --- the run ------------------------------------------------------------------------------------------------------

function versions(list: Stack[]): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  for (const s of list) v[`python torch (${s.key})`] = sh(s.python, ['-c', 'import torch; print(torch.__version__)']).trim();
  v.onnxruntime_node = (JSON.parse(readFileSync(path.join(REPO, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string }).version;
  v.autocannon = (JSON.parse(readFileSync(path.join(REPO, 'node_modules', 'autocannon', 'package.json'), 'utf8')) as { version: string }).version;
  try {
    v.openblas = sh('dpkg-query', ['-W', `-f=\${Version}`, 'libopenblas0-openmp']).trim();
  } catch {
    v.openblas = 'not installed';
  }
  return v;
}

const list = stacks();
const runners = runnersFor(list);
const demo: BenchModel = {
  key: 'demo',
  label: 'default model (models/: 13 blocks of EfficientNet-Lite0 + a small BERT, 1.6 M parameters)',
  dir: path.join(REPO, 'models'),
  plan: () => ({ rounds, iters, warmup: 5 }),
};
// The full-size model: exported in both kinds of run; its latency matrix and options study in a full run only.
const full = args['no-full-model'] ? undefined : await fullModel();
const models = full && !quick ? [demo, full] : [demo];
const inputsRoot = path.join(os.tmpdir(), `torchscript-node-bench-inputs-${process.pid}`);

const results: BenchResults = {
  kind: quick ? 'quick' : 'full',
  date: new Date().toISOString(),
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
  },
  versions: versions(list),
  environment: {
    OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? '(unset)',
    OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? '(unset)',
    OMP_NUM_THREADS: 'the thread count of each measurement',
  },
  command: `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  settings: {
    default_model: demo.plan(1),
    full_model_batch_1: full?.plan(1),
    full_model_batch_8: full?.plan(8),
    threads: threadCounts,
    batches,
    service_duration_s: duration,
  },
  models: models.map((m) => ({ key: m.key, label: m.label })),
  latency: [],
  options: [],
  service: [],
};
try {
  results.latency = await latencyMatrix(models, runners, inputsRoot);
  if (!quick) {
    const model = full ?? demo;
    results.options_model = model.label;
    results.options = await optionsStudy(model, list, inputsRoot);
  }
  if (!args['no-service']) {
    const { rows, photo } = await serviceLoad();
    results.service = rows;
    results.service_upload = photo;
    if (full) {
      results.workshop_service = await workshopService({
        repo: REPO,
        modelDir: full.dir,
        sharedData: SHARED_DATA,
        workDir: path.join(inputsRoot, 'workshop-service'),
        threads: 2,
        concurrencies: quick ? [4] : [1, 4, 16],
        durationS: duration,
        baselineIters: quick ? 3 : 10,
        forwardIters: quick ? 5 : 15,
        addons: list.map((s) => ({ label: s.label, addon: s.addon })),
        progress,
      });
    }
  }
} finally {
  rmSync(inputsRoot, { recursive: true, force: true });
}

const name = quick ? 'quick' : 'latest';
mkdirSync(args.out, { recursive: true });
writeFileSync(path.join(args.out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(path.join(args.out, `${name}.svg`), renderSvg(results));
const serviceSvg = results.workshop_service ? `${name}-service.svg` : undefined;
if (results.workshop_service && serviceSvg) {
  const footer = `${results.machine.cpu}, ${results.machine.cores} cores; ${results.date.slice(0, 10)}; ${results.command}`;
  writeFileSync(path.join(args.out, serviceSvg), workshopSvg(results.workshop_service, footer));
}
writeFileSync(path.join(args.out, `${name}.md`), renderMarkdown(results, `${name}.svg`, serviceSvg));
if (!quick && args.out === path.join(REPO, 'bench', 'results')) {
  updateReadme(path.join(REPO, 'README.md'), results, `bench/results/${name}.svg`, serviceSvg && `bench/results/${serviceSvg}`);
}
progress(`done in ${Math.round((Date.now() - started) / 1000)} s: ${path.join(args.out, name)}.{json,md,svg}`);

const pick = (kind: string, stack: string) =>
  results.latency.find((r) => r.model === 'demo' && r.batch === 1 && r.threads === 2 && r.kind === kind && r.stack === stack);
const addon = pick('addon', 'debian');
const onnx = pick('onnx', 'onnx');
const floor = pick('cpp', 'debian');
const python = pick('python', 'debian');
const rps = (backend: string) => results.service.find((r) => r.backend === backend && r.cache === 'off' && r.concurrency === 4)?.requests_per_s;
const round = (v: number | undefined) => (v === undefined ? null : Math.round(v * 1000) / 1000);
console.log(
  JSON.stringify({
    kind: results.kind,
    model: 'demo',
    batch: 1,
    threads: 2,
    addon_p50_ms: round(addon?.p50),
    onnx_p50_ms: round(onnx?.p50),
    addon_vs_onnx: round(addon && onnx ? addon.p50 / onnx.p50 : undefined),
    floor_p50_ms: round(floor?.p50),
    addon_vs_floor: round(addon && floor ? addon.p50 / floor.p50 : undefined),
    python_p50_ms: round(python?.p50),
    eventloop_p99_ms: {
      addon: round(addon?.eventloop_p99_ms),
      onnx_worker: round(onnx?.eventloop_p99_ms),
      onnx_main: round(pick('onnx-main', 'onnx')?.eventloop_p99_ms),
    },
    service_rps_c4: { torch: round(rps('torch')), onnx: round(rps('onnx')) },
    workshop_model: workshopHeadlines(results.workshop_service),
  }),
);
