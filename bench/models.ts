// The models the latency is measured on (the default model of models/, and the full-size workshop architecture
// exported with random weights), and the inputs folders every runner reads the same inputs from.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { TextTokenizer } from '../src/classifier/tokenizer.js';
import type { BenchPlan } from './plan.js';

/** Rounds, timed forwards and warm-up forwards of one measurement. */
export interface Schedule {
  rounds: number;
  iters: number;
  warmup: number;
}

export interface BenchModel {
  key: 'demo' | 'full';
  label: string;
  dir: string;
  /** The folder has an int8 variant (model.json's variants.int8, its two ONNX parts) the service can run. */
  int8: boolean;
  /** How one measurement at a batch size is run. */
  schedule(batch: number): Schedule;
}

export function demoModel(plan: BenchPlan): BenchModel {
  return {
    key: 'demo',
    label: 'default model (models/: 13 blocks of EfficientNet-Lite0 + a small BERT, 1.6 M parameters)',
    dir: path.join(plan.paths.repo, 'models'),
    int8: existsSync(path.join(plan.paths.repo, 'models', 'head.int8.onnx')),
    schedule: () => ({ rounds: plan.rounds, iters: plan.iters, warmup: plan.warmup }),
  };
}

/** The full-size workshop architecture; undefined (and said) when bert-base-uncased's vocabulary is missing. */
export async function fullModel(plan: BenchPlan): Promise<BenchModel | undefined> {
  const { paths, progress } = plan;
  const vocab = path.join(paths.sharedData, 'bert-base-uncased', 'vocab.txt');
  if (!existsSync(vocab)) {
    progress(`the full-size model needs ${vocab} (bert-base-uncased's vocabulary): skipped`);
    return undefined;
  }
  // With the food photos of ../shared/data, the export also makes the int8 variant (calibrated on train/,
  // measured on val/). Its weights are random, so its classes' probabilities are nearly equal and top-1 flips
  // on tiny differences: the agreement it reaches (0.95-1.0 for each text, max |delta p| about 0.0005) says
  // little, and the threshold is lowered to 0.9 so that the service may run the variant for its speed. Measured
  // with two texts (the default and another) over the 75 validation photos, 32 calibration photos: the bench needs
  // the variant's speed, and the agreement of random weights is no figure to spend minutes on (the default
  // model's, with real weights, is measured over all texts by its own export).
  const food = path.join(paths.sharedData, 'food');
  const int8 = existsSync(path.join(food, 'train')) && existsSync(path.join(food, 'val'));
  const int8Args = int8
    ? [
        ...['--precision', 'int8', '--calibration', path.join(food, 'train'), '--validation', path.join(food, 'val')],
        ...['--calibration-photos', '32', '--text', 'a photo of a hamburger', '--min-agreement', '0.9', '--timing-runs', '3'],
      ]
    : [];
  if (!int8) progress(`the full-size model's int8 variant needs ${food}/train and val (calibration and validation photos): fp32 only`);
  // Exported once per version of the exporter (export_model.py and every module of scripts/foodmodel) and of
  // its arguments into a temporary folder (1.7 GB; never committed) and reused.
  const foodmodel = readdirSync(path.join(paths.repo, 'scripts', 'foodmodel')).filter((f) => f.endsWith('.py'));
  const exporter = ['scripts/export_model.py', ...foodmodel.sort().map((f) => `scripts/foodmodel/${f}`)]
    .map((f) => readFileSync(path.join(paths.repo, f)))
    .reduce((h, b) => h.update(b), createHash('sha256').update(`${int8Args.join(' ')}\n`))
    .digest('hex')
    .slice(0, 12);
  const dir = path.join(os.tmpdir(), `torchscript-node-bench-full-${exporter}`);
  if (!existsSync(path.join(dir, 'model.json'))) {
    // Into a folder of this process's own, then renamed into place: two runs at once (two `npm test`s on one
    // machine) each export their own, and neither removes or reads a folder the other is still writing.
    const partial = `${dir}.partial-${process.pid}-${Date.now()}`;
    progress(
      `exporting the full-size workshop architecture with random weights into ${dir} (about a minute, 1.6 GB` +
        `${int8 ? '; then its int8 variant, calibrated and measured on the food photos: 2-3 more minutes' : ''})`,
    );
    try {
      await runStreaming(paths.repo, path.join(paths.repo, '.venv', 'bin', 'python'), [
        'scripts/export_model.py',
        '--random',
        'full',
        '--vocab',
        vocab,
        '--out',
        partial,
        ...int8Args,
      ]);
      placeExport(partial, dir);
    } finally {
      rmSync(partial, { recursive: true, force: true });
    }
  } else {
    progress(`full-size model: reusing ${dir}`);
  }
  return {
    key: 'full',
    label: 'full-size workshop model (ResNet18 + BERT-base, 132.5 M parameters, random weights)',
    dir,
    int8: existsSync(path.join(dir, 'head.int8.onnx')),
    // A forward takes 0.2-1 s at batch 1 and several seconds at batch 8 here.
    schedule: (batch) => (batch === 1 ? { rounds: Math.min(plan.rounds, 3), iters: 5, warmup: 2 } : { rounds: Math.min(plan.rounds, 2), iters: 3, warmup: 1 }),
  };
}

/**
 * Renames the finished export `partial` to `dir`, unless another run has put a complete one there first (it is
 * kept, and used). A `dir` without model.json is a leftover of an export cut short: moved aside, then replaced.
 */
function placeExport(partial: string, dir: string): void {
  try {
    renameSync(partial, dir);
  } catch (err) {
    if (existsSync(path.join(dir, 'model.json'))) return;
    if (!existsSync(dir)) throw err;
    const stale = `${dir}.stale-${process.pid}-${Date.now()}`;
    renameSync(dir, stale);
    renameSync(partial, dir);
    rmSync(stale, { recursive: true, force: true });
  }
}

function runStreaming(cwd: string, command: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
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
export async function writeInputs(model: BenchModel, batch: number, root: string): Promise<string> {
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
