// The study's measurements of the model alone (steps 1 and 2 of bench/workshop-service.ts): the workshop app's
// eager forward in Python torch (the baseline), and the service's forwards of each model part on each backend.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { type BaselineRow, type PartForwardRow, stats } from '../results.js';
import type { WorkshopServicePlan } from './plan.js';
import { runJson } from './run-json.js';

export async function baseline(plan: WorkshopServicePlan): Promise<BaselineRow[]> {
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

export async function forwards(plan: WorkshopServicePlan): Promise<PartForwardRow[]> {
  const rows: PartForwardRow[] = [];
  const variants: { backend: string; args: string[]; env: NodeJS.ProcessEnv; ext: string }[] = [
    { backend: 'ONNX Runtime (worker thread)', args: ['--backend', 'onnx'], env: {}, ext: 'onnx' },
  ];
  // The int8 variant (what PRECISION=int8 serves): dynamic int8 text encoder, static int8 (QDQ) head.
  if (plan.int8) variants.push({ backend: 'ONNX Runtime (worker thread), int8', args: ['--backend', 'onnx'], env: {}, ext: 'int8.onnx' });
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
