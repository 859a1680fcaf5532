// The end of a run: the results written (<name>.json, .md, .svg, <name>-service.svg, and from a full run into
// bench/results the figures of README.md and docs/benchmark.md), and the headline figures that go out as the last line of stdout.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { renderMarkdown, renderSvg, updateReadme } from './report.js';
import type { BenchResults } from './results.js';
import { workshopSvg } from './workshop-report.js';
import { workshopHeadlines } from './workshop-service.js';

/** Writes <name>.svg, <name>-service.svg (with the full-size model's study), <name>.md and the figures of README.md and docs/benchmark.md. */
function writeReports(outDir: string, name: string, results: BenchResults, readme: string | undefined): void {
  writeFileSync(path.join(outDir, `${name}.svg`), renderSvg(results));
  const serviceSvg = results.workshop_service ? `${name}-service.svg` : undefined;
  if (results.workshop_service && serviceSvg) {
    const footer = `${results.machine.cpu}, ${results.machine.cores} cores; ${results.date.slice(0, 10)}; ${results.command}`;
    writeFileSync(path.join(outDir, serviceSvg), workshopSvg(results.workshop_service, footer));
  }
  writeFileSync(path.join(outDir, `${name}.md`), renderMarkdown(results, `${name}.svg`, serviceSvg));
  if (readme) updateReadme(readme, results, `bench/results/${name}.svg`, serviceSvg && `bench/results/${serviceSvg}`);
}

/** Writes the results of a run: the JSON, then the reports made from it. */
export function writeResults(outDir: string, name: string, results: BenchResults, readme: string | undefined): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeReports(outDir, name, results, readme);
}

/** `--render`: the reports again from latest.json, after a change to their format. */
export function renderSaved(outDir: string, readme: string | undefined): void {
  const saved = JSON.parse(readFileSync(path.join(outDir, 'latest.json'), 'utf8')) as BenchResults;
  writeReports(outDir, 'latest', saved, readme);
}

/** The figures a reader (or CI's log) wants first: the default model at batch 1 and 2 threads, the service. */
export function headlines(results: BenchResults): Record<string, unknown> {
  const pick = (kind: string, stack: string) =>
    results.latency.find((r) => r.model === 'demo' && r.batch === 1 && r.threads === 2 && r.kind === kind && r.stack === stack);
  const addon = pick('addon', 'debian');
  const onnx = pick('onnx', 'onnx');
  const floor = pick('cpp', 'debian');
  const python = pick('python', 'debian');
  const rps = (backend: string) => results.service.find((r) => r.backend === backend && r.cache === 'off' && r.concurrency === 4)?.requests_per_s;
  const round = (v: number | undefined) => (v === undefined ? null : Math.round(v * 1000) / 1000);
  return {
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
  };
}
