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
//     distinct photos, the same text or a different one on every request, concurrency 1, 4 and 16; at fp32 and,
//     where the food photos are there to calibrate it, at PRECISION=int8, with each part's forward at both
//     precisions and the int8 variants' agreement with fp32 (the default model's and the full-size model's).
// Results: bench/results/<name>.json, .md and .svg (and <name>-service.svg); the last line of stdout is one
// JSON object of headlines.
//
//   npm run bench [-- --quick] [-- --help]
//
// This file runs the phases in order; each takes the plan read from the command line (bench/plan.ts).
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { type BenchModel, demoModel, fullModel } from './models.js';
import { type BenchCommand, type BenchPlan, readCommandLine, USAGE, UsageError } from './plan.js';
import type { BenchResults } from './results.js';
import { runnersFor } from './runners.js';
import { buildStacks, versions } from './stacks.js';
import { latencyMatrix } from './studies/latency.js';
import { optionsStudy } from './studies/options.js';
import { serviceLoad } from './studies/service-load.js';
import { headlines, renderSaved, writeResults } from './summary.js';
import { workshopService } from './workshop-service.js';

async function measure(plan: BenchPlan): Promise<BenchResults> {
  const { quick, progress } = plan;
  const stacks = buildStacks(plan);
  const runners = runnersFor(stacks);
  const demo = demoModel(plan);
  // The full-size model: exported in both kinds of run; its latency matrix and options study in a full run only.
  const full = plan.fullModel ? await fullModel(plan) : undefined;
  const models: BenchModel[] = full && !quick ? [demo, full] : [demo];
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
    versions: versions(plan, stacks),
    environment: {
      OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE ?? '(unset)',
      OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? '(unset)',
      OMP_NUM_THREADS: 'the thread count of each measurement',
    },
    command: plan.command,
    settings: {
      default_model: demo.schedule(1),
      full_model_batch_1: full?.schedule(1),
      full_model_batch_8: full?.schedule(8),
      threads: plan.threadCounts,
      batches: plan.batches,
      service_duration_s: plan.durationS,
    },
    models: models.map((m) => ({ key: m.key, label: m.label })),
    latency: [],
    options: [],
    service: [],
  };
  try {
    results.latency = await latencyMatrix(plan, models, runners, inputsRoot);
    if (!quick) {
      const model = full ?? demo;
      results.options_model = model.label;
      results.options = await optionsStudy(plan, model, stacks, inputsRoot);
    }
    if (plan.service) {
      const { rows, photo } = await serviceLoad(plan);
      results.service = rows;
      results.service_upload = photo;
      if (full) {
        results.workshop_service = await workshopService({
          repo: plan.paths.repo,
          modelDir: full.dir,
          int8: full.int8,
          sharedData: plan.paths.sharedData,
          workDir: path.join(inputsRoot, 'workshop-service'),
          threads: 2,
          concurrencies: [...plan.concurrencies],
          durationS: plan.durationS,
          baselineIters: quick ? 3 : 10,
          forwardIters: quick ? 5 : 15,
          addons: stacks.map((s) => ({ label: s.label, addon: s.addon })),
          progress,
        });
      }
    }
  } finally {
    rmSync(inputsRoot, { recursive: true, force: true });
  }
  return results;
}

/** The command line read; a wrong value of an option exits 2 with the usage. */
function readCommandLineOrExit(): BenchCommand {
  try {
    return readCommandLine(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
}

const command = readCommandLineOrExit();
if (command.action === 'help') {
  console.log(USAGE);
} else if (command.action === 'render') {
  renderSaved(command.outDir, command.readme);
  console.error(`bench: rendered ${path.join(command.outDir, 'latest')}.{md,svg} from latest.json`);
} else {
  const { plan } = command;
  const results = await measure(plan);
  writeResults(plan.outDir, plan.resultsName, results, plan.readme);
  plan.progress(`done in ${Math.round((Date.now() - plan.startedAt) / 1000)} s: ${path.join(plan.outDir, plan.resultsName)}.{json,md,svg}`);
  console.log(JSON.stringify(headlines(results)));
}
