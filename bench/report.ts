// `npm run bench`'s results for people: a Markdown report, an SVG chart of latency per backend, and the blocks
// between <!-- bench:start --> and <!-- bench:end --> of README.md (the figures that matter) and docs/benchmark.md
// (the chart and the tables); a full run, or --render, rewrites both.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { BenchResults, LatencyRow } from './results.js';
import { workshopMarkdown } from './workshop-report.js';
import { escapeXml, svgDocument } from './svg.js';

const ms = (v: number | undefined) => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const ratio = (v: number | undefined, flag = false) => (v === undefined || Number.isNaN(v) ? '–' : `${v.toFixed(2)}×${flag ? ' †' : ''}`);
/** A LibTorch runner below 0.9× its own floor beat an executable that does strictly less: noise, flagged. */
const belowFloor = (r: LatencyRow) => r.kind !== 'onnx' && r.kind !== 'onnx-main' && r.vs_floor !== undefined && r.vs_floor < 0.9;

function latencyTable(rows: LatencyRow[]): string {
  const lines = [
    '| runner | threads | batch | p50 ms | p95 ms | p99 ms | × floor | event loop p99 ms | same output |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.runner} | ${r.threads} | ${r.batch} | failed: ${r.error.replace(/\|/g, '/')} | | | | | |`);
      continue;
    }
    lines.push(
      `| ${r.runner} | ${r.threads} | ${r.batch} | **${ms(r.p50)}** | ${ms(r.p95)} | ${ms(r.p99)} | ${ratio(r.vs_floor, belowFloor(r))} | ${ms(r.eventloop_p99_ms)} | ${r.output_matches ? 'yes' : '**no**'} |`,
    );
  }
  return lines.join('\n');
}

/** The headline: batch 1, the most threads measured, one line per runner, one column per model. */
export function headlineTable(results: BenchResults): string {
  const threads = Math.max(...results.latency.map((r) => r.threads));
  const models = results.models.map((m) => m.key);
  const runners = [...new Set(results.latency.map((r) => r.runner))];
  const lines = [
    `| batch 1, ${threads} threads | ${models.map((m) => `${m} model p50 (× floor)`).join(' | ')} |`,
    `|---|${models.map(() => '---').join('|')}|`,
  ];
  for (const runner of runners) {
    const cells = models.map((m) => {
      const r = results.latency.find((x) => x.runner === runner && x.model === m && x.batch === 1 && x.threads === threads);
      if (r?.error) return 'failed';
      return r ? `${ms(r.p50)} ms (${ratio(r.vs_floor, belowFloor(r))})` : '–';
    });
    lines.push(`| ${runner} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function serviceTable(results: BenchResults): string {
  const lines = ['| backend | cache | concurrency | req/s | p50 ms | p99 ms | errors | peak RSS MB (this run) |', '|---|---|---|---|---|---|---|---|'];
  for (const r of results.service) {
    lines.push(
      `| ${r.backend} | ${r.cache} | ${r.concurrency} | ${r.requests_per_s.toFixed(1)} | ${r.p50_ms} | ${r.p99_ms} | ${r.errors} | ${r.peak_rss_mb.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

export function renderMarkdown(results: BenchResults, svgName: string, workshopSvgName?: string): string {
  const out: string[] = [];
  out.push(`# Benchmark results (${results.kind} run, ${results.date.slice(0, 16).replace('T', ' ')} UTC)`, '');
  out.push(`Command: \`${results.command}\`  `);
  out.push(`Machine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memory_gb} GB, ${results.machine.os}  `);
  out.push(
    `Versions: ${Object.entries(results.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}  `,
  );
  out.push(
    `Environment: ${Object.entries(results.environment)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}  `,
  );
  out.push(
    `Settings: ${Object.entries(results.settings)
      .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
      .join(', ')}`,
    '',
  );
  if (results.workshop_service) out.push(workshopMarkdown(results.workshop_service, workshopSvgName));
  out.push(`![latency per backend](${svgName})`, '');
  out.push('## Model latency, batch 1', '', headlineTable(results), '');
  out.push(
    '"× floor": p50 divided by the p50 of the C++ executable calling the same LibTorch directly (for ONNX Runtime: ' +
      "Debian's LibTorch). Every runner is a separate process: warm-up forwards first, then timed forwards one after " +
      'another, in rounds whose order rotates. "event loop p99": the delay of the event loop while the forwards ran ' +
      '(sampled at 1 ms: a free loop shows 1–2 ms). † marks a LibTorch runner below 0.9× its floor, which does ' +
      'strictly less work: the noise of this shared machine.',
    '',
  );
  for (const m of results.models) {
    out.push(`## ${m.label}`, '', latencyTable(results.latency.filter((r) => r.model === m.key)), '');
  }
  if (results.options.length) {
    out.push(`## The options of each backend (batch 1, 2 threads; ${results.options_model ?? ''})`, '');
    out.push('| stack | option | p50 ms | p95 ms | p99 ms | same output |', '|---|---|---|---|---|---|');
    for (const r of results.options) {
      out.push(
        r.error
          ? `| ${r.stack} | ${r.option} | failed: ${r.error} | | | |`
          : `| ${r.stack} | ${r.option} | **${ms(r.p50)}** | ${ms(r.p95)} | ${ms(r.p99)} | ${r.output_matches ? 'yes' : '**no**'} |`,
      );
    }
    out.push('');
  }
  if (results.service.length) {
    out.push(`## The HTTP service under load (the default model; autocannon; upload: ${results.service_upload ?? ''})`, '');
    out.push(serviceTable(results), '');
    out.push(
      '"cache hits": the same upload repeated, answered from the prediction cache after the first; "cache off": PREDICTION_CACHE_SIZE=0, every request computed. THREADS=2, default logging.',
      '',
    );
  }
  return `${out.join('\n')}\n`;
}

/** Horizontal bars of p50 (a tick at p99) per runner, batch 1 with the most threads, one panel per model. */
export function renderSvg(results: BenchResults): string {
  const threads = Math.max(...results.latency.map((r) => r.threads));
  const panels = results.models
    .map((m) => ({ model: m, rows: results.latency.filter((r) => r.model === m.key && r.batch === 1 && r.threads === threads && !r.error) }))
    .filter((p) => p.rows.length);
  const width = 960;
  const labelWidth = 330;
  const barArea = width - labelWidth - 230;
  const rowHeight = 24;
  const colour: Record<string, string> = { cpp: '#4c566a', addon: '#d08770', onnx: '#5e81ac', 'onnx-main': '#88c0d0', python: '#a3be8c' };
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="16" y="24" font-size="16" font-weight="bold">Model latency, batch 1, ${threads} threads: p50 (bar) and p99 (tick), milliseconds</text>`);
  for (const { model, rows } of panels) {
    // The scale follows the medians: one runner's stray p99 must not squeeze every bar (a clipped tick says so).
    const max = Math.max(...rows.map((r) => r.p50)) * 1.5;
    const scale = barArea / max;
    parts.push(`<text x="16" y="${y + 16}" font-size="13" font-weight="bold">${escapeXml(model.label)}</text>`);
    y += 26;
    for (const r of [...rows].sort((a, b) => a.p50 - b.p50)) {
      const w = Math.max(1, r.p50 * scale);
      parts.push(`<text x="${labelWidth - 8}" y="${y + 16}" font-size="12" text-anchor="end">${escapeXml(r.runner)}</text>`);
      parts.push(`<rect x="${labelWidth}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${colour[r.kind] ?? '#999'}"/>`);
      const clipped = r.p99 > max;
      const tick = labelWidth + Math.min(r.p99, max) * scale;
      parts.push(
        `<line x1="${tick.toFixed(1)}" x2="${tick.toFixed(1)}" y1="${y + 2}" y2="${y + rowHeight - 2}" stroke="#2e3440" stroke-width="1.5"${clipped ? ' stroke-dasharray="3 2"' : ''}/>`,
      );
      const note = (r.vs_floor === undefined ? '' : ` (${r.vs_floor.toFixed(2)}× floor)`) + (clipped ? `, p99 ${ms(r.p99)}` : '');
      parts.push(`<text x="${(tick + 6).toFixed(1)}" y="${y + 16}" font-size="12">${ms(r.p50)}${note}</text>`);
      y += rowHeight;
    }
    y += 14;
  }
  parts.push(
    `<text x="16" y="${y + 8}" font-size="11" fill="#555">${escapeXml(`${results.machine.cpu}, ${results.machine.cores} cores; ${results.date.slice(0, 10)}; npm run bench`)}</text>`,
  );
  const height = y + 22;
  return svgDocument(width, height, parts);
}

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

/** Replaces what lies between the bench markers of a Markdown file (a file without them is left alone). */
function rewriteBlock(file: string, lines: string[]): void {
  const text = readFileSync(file, 'utf8');
  const i = text.indexOf(START);
  const j = text.indexOf(END);
  if (i < 0 || j < i) return;
  writeFileSync(file, text.slice(0, i) + [START, ...lines, END].join('\n') + text.slice(j + END.length));
}

/** The README's figures: the service on the full-size model against the workshop's app, at concurrency 4. */
export function serviceHeadline(results: BenchResults): string | undefined {
  const w = results.workshop_service;
  const base = w?.baseline.at(-1);
  const rows = w?.runs.filter((x) => (x.workers ?? 1) === 1 && x.concurrency === 4) ?? [];
  if (!w || !base || rows.length === 0) return undefined;
  const lines = [
    `| the service on the ${w.model}, concurrency 4, every answer computed | req/s | × the workshop's app (${base.threads} threads: ${base.requests_per_s.toFixed(2)} req/s) | p50 ms |`,
    '|---|---|---|---|',
  ];
  for (const x of rows) {
    const text = x.text === 'same' ? 'the same text' : 'a new text every request';
    lines.push(
      `| ${x.precision ?? 'fp32'}, ${text} | **${x.requests_per_s.toFixed(1)}** | ${(x.requests_per_s / base.requests_per_s).toFixed(2)}× | ${x.p50_ms.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * Rewrites the bench blocks of a full run: the README's (`readmePath`: the figures that matter, with links to the
 * rest) and docs/benchmark.md's beside it (the full-size model's study, the chart, the service on the demo model).
 * `svgPath` and `workshopSvgPath` are relative to the repository's root.
 */
export function updateReadme(readmePath: string, results: BenchResults, svgPath: string, workshopSvgPath?: string): void {
  const measured = `Measured ${results.date.slice(0, 10)} on ${results.machine.cpu} (${results.machine.cores} cores) by \`${results.command}\``;
  const service = serviceHeadline(results);
  rewriteBlock(readmePath, [
    `${measured}; every figure: [bench/results/latest.md](bench/results/latest.md); how and what else was measured: [docs/benchmark.md](docs/benchmark.md).`,
    '',
    ...(service ? [service, ''] : []),
    headlineTable(results),
  ]);
  const doc = path.join(path.dirname(readmePath), 'docs', 'benchmark.md');
  if (!existsSync(doc)) return;
  const fromDocs = (p: string) => `../${p}`;
  rewriteBlock(doc, [
    `${measured}; full report: [bench/results/latest.md](../bench/results/latest.md).`,
    '',
    ...(results.workshop_service ? [workshopMarkdown(results.workshop_service, workshopSvgPath && fromDocs(workshopSvgPath), 3), ''] : []),
    `![latency per backend](${fromDocs(svgPath)})`,
    '',
    "The headline table (batch 1, every runner, both models) is the README's [figures](../README.md#figures).",
    '',
    serviceTable(results),
  ]);
}
