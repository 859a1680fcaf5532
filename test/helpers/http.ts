// HTTP helpers for the service's tests beyond server.ts: the workshop's answers checked field by field, a form
// sent chunked; and, from scripts/lib/ (bench/ uses them too), the one multipart builder and the one /metrics
// reader. The raw HTTP client is raw-http.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { expect } from 'vitest';

import { DEFAULT_MODEL_DIR, getJson } from './server.js';

export { metric, parseMetrics, sampleOf } from '../../scripts/lib/metrics.js';
export { multipartBody } from '../../scripts/lib/multipart.js';

/** The default model's classes, in index order. */
export const DEFAULT_CLASSES = Object.entries(JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, 'class_mapping.json'), 'utf8')) as Record<string, number>)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

export async function reload(url: string): Promise<{ status: number; body: any }> {
  return getJson(url, '/reload_model', { method: 'POST' });
}

export async function status(url: string): Promise<any> {
  const res = await getJson(url, '/system_status');
  expect(res.status).toBe(200);
  return res.body;
}

/** The workshop's /predict body, checked field by field, for a model of `classes`. */
export function expectPredictionBody(body: any, classes: readonly string[] = DEFAULT_CLASSES): void {
  expect(Object.keys(body).sort()).toEqual(['cache_hit', 'predictions']);
  expect(typeof body.cache_hit).toBe('boolean');
  expect(body.predictions).toHaveLength(Math.min(5, classes.length));
  let previous = Infinity;
  let sum = 0;
  for (const p of body.predictions) {
    expect(Object.keys(p).sort()).toEqual(['class_name', 'confidence', 'probability']);
    expect(classes.map((c) => c.replaceAll('_', ' '))).toContain(p.class_name);
    expect(p.probability).toBeGreaterThanOrEqual(0);
    expect(p.probability).toBeLessThanOrEqual(previous);
    expect(p.confidence).toBe(`${(p.probability * 100).toFixed(2)}%`);
    previous = p.probability;
    sum += p.probability;
  }
  if (classes.length <= 5) expect(sum).toBeCloseTo(1, 6);
}

/** Two answers of the same model to the same image and text: the same classes in the same order, the same probabilities. */
export function expectSameAnswer(a: any[], b: any[]): void {
  expect(b.map((p) => p.class_name)).toEqual(a.map((p) => p.class_name));
  b.forEach((p, i) => {
    expect(p.probability).toBeCloseTo(a[i].probability, 5);
  });
}

/** fetch's options to POST `form` chunked, in pieces of 64 KiB without a Content-Length, as a streaming client does. */
export async function chunkedPost(form: FormData): Promise<RequestInit> {
  const encoded = new Request('http://localhost/', { method: 'POST', body: form });
  const whole = Buffer.from(await encoded.arrayBuffer());
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= whole.length) {
        controller.close();
        return;
      }
      const end = offset + 65536;
      controller.enqueue(whole.subarray(offset, end));
      offset = end;
    },
  });
  // duplex: Node's fetch needs it for a stream body (not yet in TypeScript's RequestInit)
  return { method: 'POST', body, headers: { 'content-type': encoded.headers.get('content-type') ?? '' }, duplex: 'half' } as RequestInit;
}
