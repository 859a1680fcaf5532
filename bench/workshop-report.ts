// The report of the service on the workshop's full-size model (bench/workshop-service.ts): Markdown tables and
// an SVG chart of requests a second against the workshop's app.
import type { WorkshopServiceResults } from './results.js';
import { escapeXml, svgDocument } from './svg.js';

const f = (v: number | undefined, digits = 1) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

/** The tables: baseline, the forwards of each backend, the service's runs. */
export function workshopMarkdown(r: WorkshopServiceResults, svgName: string | undefined, level = 2): string {
  const base = r.baseline.at(-1);
  const h = '#'.repeat(level);
  const out: string[] = [];
  out.push(`${h} The service on the ${r.model}`, '');
  if (svgName) out.push(`![the service against the workshop's app](${svgName})`, '');
  out.push(
    `The service as \`npm start\` runs it (its Node flags, its defaults, THREADS=${r.service.threads}, the prediction cache off): ${r.service.backend}, ` +
      `layout ${r.service.layout}, ${r.service.runtime}. Uploads: ${r.photos}.`,
    '',
  );
  out.push(`${h}# The baseline: the workshop's app's forward (Python torch, eager, one at a time)`, '');
  out.push('| threads | torch | p50 ms | p95 ms | req/s (1/p50) |', '|---|---|---|---|---|');
  for (const b of r.baseline) out.push(`| ${b.threads} | ${b.torch} | ${f(b.p50, 0)} | ${f(b.p95, 0)} | ${f(b.requests_per_s, 2)} |`);
  out.push(
    '',
    `The ratios below are against the second line (${base?.threads ?? ''} threads, as many as the service's): the workshop's app ` +
      'runs uvicorn with 4 workers, which together use both cores, so this is its rate under load.',
    '',
  );
  out.push(`${h}# The forwards, batch 1`, '', '| part | backend | p50 ms | p95 ms | BLAS |', '|---|---|---|---|---|');
  for (const p of r.forwards) {
    out.push(
      p.error
        ? `| ${p.part} | ${p.backend} | failed: ${p.error.replace(/\|/g, '/')} | | |`
        : `| ${p.part} | ${p.backend} | **${f(p.p50)}** | ${f(p.p95)} | ${p.blas ?? ''} |`,
    );
  }
  out.push('', `${h}# The service under load`, '');
  out.push(
    '| workers x threads | precision | text | concurrency | req/s | × baseline | p50 ms | p99 ms | errors | /health p50 / p99 ms | peak RSS MB | head forward ms × batch | text encoder ms × batch | preprocess ms | queue ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const x of r.runs) {
    const vs = base ? x.requests_per_s / base.requests_per_s : undefined;
    out.push(
      `| ${x.workers ?? 1} x ${x.threads ?? '–'} | ${x.precision ?? 'fp32'} | ${x.text} | ${x.concurrency} | **${f(x.requests_per_s)}** | ${f(vs, 2)}× | ${f(x.p50_ms, 0)} | ${f(x.p99_ms, 0)} | ${x.errors} | ` +
        `${f(x.health_p50_ms, 2)} / ${f(x.health_p99_ms, 2)} | ${f(x.peak_rss_mb, 0)} | ${f(x.head_forward_ms)} × ${f(x.head_batch, 2)} | ` +
        `${x.text_forward_ms === undefined ? '–' : `${f(x.text_forward_ms)} × ${f(x.text_batch, 2)}`} | ${f(x.preprocess_ms)} | ${f(x.queue_ms)} |`,
    );
  }
  out.push(
    '',
    '"same": every request says "Image of food" (the text encoder ran once, at start); "different": a text never seen before on ' +
      'every request (the text encoder runs for each). Distinct photos throughout, and the prediction cache off (PREDICTION_CACHE_SIZE=0): every answer computed (the client of each run checks that none came from a cache). ' +
      "/health is asked every 10 ms by another process during the run. The last columns come from the service's /metrics over the run: " +
      'the mean forward and batch size of each part, decoding, and the wait from admission to the forward.',
    '',
  );
  if (r.agreement?.length) {
    out.push(
      `${h}# The int8 variants against fp32`,
      '',
      "As `scripts/export_model.py --precision int8` measured them (model.json's variants.int8): the worst text's top-1 agreement and top-5 overlap, over the validation photos with each text.",
      '',
      '| model | photos x texts | top-1 agreement (worst text) | top-5 overlap (worst) | max abs delta p | accuracy fp32 / int8 | threshold | passed |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const a of r.agreement) {
      const accuracy = a.accuracy_fp32 === undefined ? '– (no labels)' : `${f(a.accuracy_fp32, 3)} / ${f(a.accuracy_int8, 3)}`;
      out.push(
        `| ${a.model} | ${a.photos} x ${a.texts} | ${f(a.top1_agreement_worst, 4)} | ${f(a.top5_overlap_worst, 4)} | ${f(a.max_abs_delta_p, 4)} | ${accuracy} | ${a.threshold} | ${a.passed ? 'yes' : 'no'} |`,
      );
    }
    out.push('', 'The full-size model has random weights: its classes are nearly tied, so its top-1 agreement says little; its |delta p| does.', '');
  }
  return out.join('\n');
}

/** Requests a second: the baseline(s), then the service at each concurrency, same and different text. */
export function workshopSvg(r: WorkshopServiceResults, footer: string): string {
  const bars: { label: string; value: number; colour: string }[] = [
    ...r.baseline.map((b) => ({ label: `workshop app's forward, Python torch, ${b.threads} threads`, value: b.requests_per_s, colour: '#a3be8c' })),
    ...r.runs.map((x) => ({
      label: `service${(x.workers ?? 1) > 1 ? ` (${x.workers} workers)` : ''}${x.precision === 'int8' ? ', int8' : ''}, ${x.text} text, concurrency ${x.concurrency}`,
      value: x.requests_per_s,
      colour: x.precision === 'int8' ? (x.text === 'same' ? '#b48ead' : '#ebcb8b') : x.text === 'same' ? '#5e81ac' : '#d08770',
    })),
  ];
  const base = r.baseline.at(-1)?.requests_per_s;
  const width = 960;
  const labelWidth = 360;
  const barArea = width - labelWidth - 180;
  const rowHeight = 24;
  const max = Math.max(...bars.map((b) => b.value), 1) * 1.05;
  const parts = [`<text x="16" y="24" font-size="16" font-weight="bold">${escapeXml(`Requests a second, ${r.model}`)}</text>`];
  let y = 40;
  for (const b of bars) {
    const w = Math.max(1, (b.value / max) * barArea);
    parts.push(`<text x="${labelWidth - 8}" y="${y + 16}" font-size="12" text-anchor="end">${escapeXml(b.label)}</text>`);
    parts.push(`<rect x="${labelWidth}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${b.colour}"/>`);
    const times = base ? ` (${(b.value / base).toFixed(1)}×)` : '';
    parts.push(`<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 16}" font-size="12">${b.value.toFixed(1)}${times}</text>`);
    y += rowHeight;
  }
  parts.push(`<text x="16" y="${y + 16}" font-size="11" fill="#555">${escapeXml(footer)}</text>`);
  const height = y + 30;
  return svgDocument(width, height, parts);
}
