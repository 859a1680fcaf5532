// Study 2, the options of each backend on one model at batch 1 (freezing, oneDNN, OpenMP's wait policy,
// OpenBLAS's core type), each run once with a longer sample, and each checked to give the same outputs.
import path from 'node:path';

import { type BenchModel, writeInputs } from '../models.js';
import type { BenchPlan } from '../plan.js';
import { type OptionRow, stats } from '../results.js';
import { measure, measurementEnv, runnerArgs, TSX } from '../runners.js';
import type { Stack } from '../stacks.js';

interface Variant {
  /** undefined: ONNX Runtime */
  stack: Stack | undefined;
  option: string;
  command: [string, string[]];
  /** Set for this variant; an empty value unsets the variable. */
  env: NodeJS.ProcessEnv;
}

export async function optionsStudy(plan: BenchPlan, model: BenchModel, stacks: readonly Stack[], inputsRoot: string): Promise<OptionRow[]> {
  const inputs = await writeInputs(model, 1, inputsRoot);
  const threads = 2;
  // Three times a batch-1 measurement: each option runs once, so it gets the longer sample.
  const o = { iters: model.schedule(1).iters * 3, warmup: model.schedule(1).warmup };
  const args = (file: string, extra: string[] = []) => runnerArgs(file, inputs, threads, { ...o, extra });
  const variants: Variant[] = [];
  for (const s of stacks) {
    const pth = path.join(model.dir, 'best_model.pth');
    const floor = (option: string, extra: string[], env: NodeJS.ProcessEnv = {}) =>
      variants.push({ stack: s, option, command: [s.floor, args(pth, extra)], env });
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
    command: [process.execPath, [...TSX, 'bench/latency-node.ts', '--backend', 'onnx', ...args(path.join(model.dir, 'best_model.onnx'))]],
    env: {},
  });
  const rows: OptionRow[] = [];
  for (const [i, v] of variants.entries()) {
    plan.progress(`[options ${i + 1}/${variants.length}] ${model.key} model, batch 1, ${threads} threads: ${v.stack?.label ?? 'ONNX Runtime'}: ${v.option}`);
    const [command, argv] = v.command;
    try {
      const env = measurementEnv(threads, v.env);
      for (const [k, value] of Object.entries(v.env)) if (value === '') delete env[k];
      const out = await measure(plan.paths.repo, command, argv, env);
      rows.push({ stack: v.stack?.label ?? `ONNX Runtime ${out.onnxruntime ?? ''}`, option: v.option, ...stats(out.times_ms), output_sum: out.output_sum });
    } catch (err) {
      rows.push({ stack: v.stack?.label ?? 'ONNX Runtime', option: v.option, error: (err as Error).message.split('\n').slice(0, 3).join(' ') });
    }
  }
  const reference = rows.find((r) => r.output_sum !== undefined)?.output_sum ?? 0;
  for (const r of rows) if (r.output_sum !== undefined) r.output_matches = Math.abs(r.output_sum - reference) <= 1e-3 * Math.max(1, Math.abs(reference));
  return rows;
}
