// Study 1, the latency matrix: every runner on every model, batch size and thread count, in interleaved rounds
// (the order rotated each round), medians reported against the C++ floor of the same LibTorch.
import { type BenchModel, writeInputs } from '../models.js';
import type { BenchPlan } from '../plan.js';
import { type LatencyRow, stats } from '../results.js';
import { measure, measurementEnv, type Runner, type RunnerOutput } from '../runners.js';

export async function latencyMatrix(plan: BenchPlan, models: readonly BenchModel[], runners: readonly Runner[], inputsRoot: string): Promise<LatencyRow[]> {
  const { progress } = plan;
  const rows: LatencyRow[] = [];
  const total = models.length * plan.threadCounts.length * plan.batches.length;
  let step = 0;
  for (const model of models) {
    for (const batch of plan.batches) {
      const inputs = await writeInputs(model, batch, inputsRoot);
      for (const threads of plan.threadCounts) {
        step++;
        // ONNX Runtime on the main thread is timed at batch 1 only: it is there for the event loop's delay.
        const active = runners.filter((r) => r.kind !== 'onnx-main' || batch === 1);
        const times = new Map<Runner, number[]>(active.map((r) => [r, []]));
        const outputs = new Map<Runner, RunnerOutput>();
        const failures = new Map<Runner, string>();
        const schedule = model.schedule(batch);
        for (let round = 0; round < schedule.rounds; round++) {
          // Rotated each round, so that no runner always goes first (or last) on a machine whose load drifts.
          const order = active.map((_, i) => active[(i + round) % active.length]);
          for (const runner of order) {
            if (failures.has(runner)) continue;
            progress(`[${step}/${total}] ${model.key} model, batch ${batch}, ${threads} thread(s), round ${round + 1}/${schedule.rounds}: ${runner.name}`);
            const [command, argv, env] = runner.command(model.dir, inputs, threads, schedule);
            try {
              const out = await measure(plan.paths.repo, command, argv, measurementEnv(threads, env));
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
        // What names a row: the model, the shape of the measurement and the runner.
        const identity = (runner: Runner) => ({ model: model.key, batch, threads, runner: runner.name, kind: runner.kind, stack: runner.stack });
        for (const [runner, error] of failures) {
          rows.push({
            ...identity(runner),
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
            ...identity(runner),
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
