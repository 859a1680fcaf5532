// `npm run bench -- --quick` runs (so CI runs it) and leaves what it promises: the JSON, the Markdown table,
// the chart, and a last line of headline figures that parses. The figures are reported, never judged: this
// machine is shared and noisy.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import type { BenchResults } from '../../bench/results.js';
import { REPO } from '../helpers/server.js';
import { SHARED_DATA } from '../helpers/torchvision.js';

/** The full-size model's study needs bert-base-uncased's vocabulary from ../shared/data. */
const HAVE_BERT_VOCAB = existsSync(path.join(SHARED_DATA, 'bert-base-uncased', 'vocab.txt'));
/** The full-size model's int8 variant is made (and the service run at PRECISION=int8) where the food photos are. */
const HAVE_FOOD = existsSync(path.join(SHARED_DATA, 'food', 'train')) && existsSync(path.join(SHARED_DATA, 'food', 'val'));

describe('npm run bench -- --quick', () => {
  it('writes quick.json, quick.md and quick.svg, and prints its headline JSON last', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'bench-quick-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--duration', '2', '--iters', '10', '--out', out], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    // 'close': the exit code, and stdout and stderr read to their end (the headline is the last line)
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, stderr.slice(-3000)).toBe(0);

    const headline = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, any>;
    console.log(`[bench --quick] ${JSON.stringify(headline)}`);
    for (const key of ['addon_p50_ms', 'onnx_p50_ms', 'addon_vs_onnx', 'floor_p50_ms', 'addon_vs_floor', 'python_p50_ms']) {
      expect(headline[key], key).toBeGreaterThan(0);
    }
    // Rates, not judged here (a benchmark's figures): the service's threads run at nice 10, so on a machine busy
    // with other work (another npm test) a 2-second run can complete no request at all.
    for (const backend of ['torch', 'onnx']) {
      expect(Number.isFinite(headline.service_rps_c4[backend]), backend).toBe(true);
      expect(headline.service_rps_c4[backend], backend).toBeGreaterThanOrEqual(0);
    }
    expect(headline.addon_vs_onnx).toBeCloseTo(headline.addon_p50_ms / headline.onnx_p50_ms, 2);
    // progress went to stderr, step by step
    expect(stderr).toMatch(/\[bench \d\d:\d\d\] \[1\/1\] demo model, batch 1, 2 thread\(s\)/);

    const results = JSON.parse(readFileSync(path.join(out, 'quick.json'), 'utf8')) as BenchResults;
    expect(results.kind).toBe('quick');
    expect(new Set(results.latency.map((r) => r.kind))).toEqual(new Set(['cpp', 'addon', 'python', 'onnx', 'onnx-main']));
    // every runner computed the same model on the same inputs
    expect(results.latency.every((r) => r.output_matches)).toBe(true);
    expect(results.service.map((r) => `${r.backend}/${r.cache}/${r.concurrency}`).sort()).toEqual(['onnx/hits/4', 'onnx/off/4', 'torch/hits/4', 'torch/off/4']);
    // no request failed; how many completed in 2 s is the benchmark's figure (see the rates above)
    expect(results.service.every((r) => r.errors === 0 && r.requests >= 0)).toBe(true);

    const markdown = readFileSync(path.join(out, 'quick.md'), 'utf8');
    expect(markdown).toContain('| addon from Node, LibTorch 1.13 (Debian) |');
    expect(markdown).toContain('![latency per backend](quick.svg)');
    const svg = readFileSync(path.join(out, 'quick.svg'), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<rect /g)!.length).toBeGreaterThanOrEqual(6);

    // The service on the full-size workshop model, against the workshop's app measured in the same run.
    if (!HAVE_BERT_VOCAB) {
      console.warn(`[bench --quick] ${SHARED_DATA}/bert-base-uncased is absent: the full-size model's study was skipped`);
      expect(headline.workshop_model).toBeNull();
      return;
    }
    const workshop = results.workshop_service!;
    expect(workshop.baseline.map((b) => b.requests_per_s > 0)).toEqual([true, true]);
    // the default (1 worker x 2 threads), at int8 where the variant was made, then 2 workers x 1 thread
    expect(workshop.runs.map((r) => `${r.workers}x${r.threads}/${r.precision}/${r.text}/${r.concurrency}`)).toEqual([
      '1x2/fp32/same/4',
      '1x2/fp32/different/4',
      ...(HAVE_FOOD ? ['1x2/int8/same/4', '1x2/int8/different/4'] : []),
      '2x1/fp32/same/4',
      '2x1/fp32/different/4',
    ]);
    if (!HAVE_FOOD) console.warn(`[bench --quick] ${SHARED_DATA}/food is absent: the full-size model's int8 variant was not made`);
    expect(workshop.runs.every((r) => r.errors === 0 && r.requests > 0 && r.peak_rss_mb > 0 && r.health_p99_ms > 0)).toBe(true);
    // the same text: the text encoder never ran during the run; a different text: it ran
    expect(workshop.runs[0].text_forward_ms).toBeUndefined();
    expect(workshop.runs[1].text_forward_ms).toBeGreaterThan(0);
    expect(new Set(workshop.forwards.filter((f) => !f.error).map((f) => f.part))).toEqual(new Set(['head', 'text_encoder']));
    for (const key of [
      'baseline_rps',
      'same_text_c4_rps',
      'same_text_c4_vs_baseline',
      'different_text_c4_rps',
      'peak_rss_mb',
      'fastest_head_forward_ms',
      'two_workers_vs_one',
      ...(HAVE_FOOD ? ['int8_same_text_c4_rps', 'int8_vs_fp32_same_text_c4', 'int8_peak_rss_mb', 'int8_max_abs_delta_p_full_model'] : []),
    ]) {
      expect(headline.workshop_model[key], key).toBeGreaterThan(0);
    }
    expect(markdown).toContain('## The service on the full-size workshop model');
    expect(readFileSync(path.join(out, 'quick-service.svg'), 'utf8')).toMatch(/^<svg /);
  }, 900_000);
});
