// The service's real answers against the schemas its own /openapi.json serves, in-process (the real app and the
// default model, ONNX Runtime and LibTorch): every body the workshop's clients read, each status from the
// document of its operation, with additionalProperties: false (src/server/api-schema.ts), so that a field
// added to an answer but not to the schema, or removed from it, fails here in seconds; test/server/fuzz.test.ts
// (schemathesis) checks the same against the running service with generated requests.
import type { Server } from 'node:http';

import pino from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/server/config.js';
import { ModelManager } from '../../src/server/model-manager.js';
import { listenInProcess } from '../helpers/in-process-app.js';
import { type OpenApiDocument, openApiValidator } from '../helpers/openapi.js';
import { multipartBody } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { DEFAULT_MODEL_DIR, REPO } from '../helpers/server.js';

const KEY = 'schema-test-key-0123456789';
const ADMIN_KEY = `${KEY}-admin`;

interface App {
  url: string;
  check: ReturnType<typeof openApiValidator>;
}

const servers: Server[] = [];
const managers: ModelManager[] = [];

/** The app with `env`'s configuration, listening on a free port, and a checker of its own /openapi.json. */
async function serve(env: Record<string, string>, models?: ModelManager): Promise<App> {
  const config = loadConfig({ MODEL_DIR: DEFAULT_MODEL_DIR, THREADS: '1', ENV_FILE: '/dev/null', ...env }, REPO);
  const logger = pino({ level: 'silent' });
  if (!models) {
    models = await ModelManager.load(config, logger);
    managers.push(models);
  }
  const { server, url } = await listenInProcess(config, models, { logger });
  servers.push(server);
  const document = (await (await fetch(`${url}/openapi.json`)).json()) as OpenApiDocument;
  return { url, check: openApiValidator(document) };
}

/** The answer to a request, checked: JSON, its status documented for the operation, its body as the schema says. */
async function answer(app: App, method: string, pathname: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${app.url}${pathname}`, { ...init, method });
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await res.json();
  expectDocumented(app, method, pathname, res.status, body);
  return { status: res.status, body };
}

function expectDocumented(app: App, method: string, pathname: string, status: number, body: unknown): void {
  const { documented, errors } = app.check(pathname, method, status, body);
  expect(documented, `${method} ${pathname} ${status} is not in /openapi.json: ${JSON.stringify(body)}`).toBe(true);
  expect(errors, `${method} ${pathname} ${status}: ${JSON.stringify(body)}`).toEqual([]);
}

function form(image: Uint8Array | undefined, text?: string): RequestInit {
  const { body, contentType } = multipartBody(image, text);
  return { body: new Uint8Array(body), headers: { 'content-type': contentType } };
}

let onnx: App;
let torch: App;
let guarded: App;
let jpeg: Buffer;

beforeAll(async () => {
  jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 60, b: 40 } } })
    .jpeg()
    .toBuffer();
  onnx = await serve({ BACKEND: 'onnx', MAX_UPLOAD_MB: '0.05' });
  torch = await serve({ BACKEND: 'torch' });
  // Keys and a rate limit: the 401, 403 and 429 of a guarded service (the ONNX model shared)
  guarded = await serve({ BACKEND: 'onnx', API_KEYS: KEY, ADMIN_API_KEYS: ADMIN_KEY, RATE_LIMIT: '5' }, managers[0]);
}, 120_000);

afterAll(async () => {
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  for (const m of managers) await m.close();
});

describe.each([
  ['ONNX Runtime', () => onnx],
  ['LibTorch', () => torch],
])('the answers of a service on %s, as its /openapi.json says', (_name, app) => {
  it('GET /health, /classes and /system_status', async () => {
    expect((await answer(app(), 'GET', '/health')).status).toBe(200);
    expect((await answer(app(), 'GET', '/classes')).status).toBe(200);
    const { status, body } = await answer(app(), 'GET', '/system_status');
    expect(status).toBe(200);
    // The workshop's four fields first, in the workshop's order
    expect(Object.keys(body).slice(0, 4)).toEqual(['device', 'cache_size', 'model', 'num_classes']);
  });

  it('POST /predict: computed, then from the cache', async () => {
    const computed = await answer(app(), 'POST', '/predict', form(jpeg, 'Image of pizza'));
    expect(computed.status).toBe(200);
    expect(Object.keys(computed.body)).toEqual(['predictions', 'cache_hit']);
    expect(Object.keys(computed.body.predictions[0])).toEqual(['class_name', 'probability', 'confidence']);
    const cached = await answer(app(), 'POST', '/predict', form(jpeg, 'Image of pizza'));
    expect(cached.body).toEqual({ ...computed.body, cache_hit: true });
  });

  it('POST /reload_model', async () => {
    const { status, body } = await answer(app(), 'POST', '/reload_model');
    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['status', 'model_generation']);
  });
});

describe("the errors' bodies, as /openapi.json says", () => {
  it('422: no image, or an image sent as a text field', async () => {
    const missing = await answer(onnx, 'POST', '/predict', form(undefined, 'Image of pizza'));
    expect(missing.status).toBe(422);
    const asText = new FormData();
    asText.append('image', 'not a file');
    expect((await answer(onnx, 'POST', '/predict', { body: asText })).status).toBe(422);
  });

  it('400: not an image; 413: an upload over MAX_UPLOAD_MB, a text over its limit', async () => {
    expect((await answer(onnx, 'POST', '/predict', form(Buffer.from('not an image at all')))).status).toBe(400);
    expect((await answer(onnx, 'POST', '/predict', form(Buffer.alloc(200 * 1024, 1)))).status).toBe(413);
    expect((await answer(onnx, 'POST', '/predict', form(jpeg, 'x'.repeat(70 * 1024)))).status).toBe(413);
  });

  it('403: a Host outside ALLOWED_HOSTS, a cross-origin POST', async () => {
    for (const [method, headers] of [
      ['POST', { host: 'evil.example' }],
      ['POST', { origin: 'http://evil.example' }],
    ] as const) {
      const res = await rawRequest(onnx.url, { method, path: '/reload_model', headers });
      expect(res.status).toBe(403);
      expectDocumented(onnx, 'POST', '/reload_model', res.status, JSON.parse(res.body));
    }
  });

  it('401: no key; 403: a key that is not an admin key; 429: over RATE_LIMIT', async () => {
    expect((await answer(guarded, 'GET', '/classes')).status).toBe(401);
    const user = { headers: { authorization: `Bearer ${KEY}` } };
    expect((await answer(guarded, 'POST', '/reload_model', user)).status).toBe(403);
    let status = 0;
    for (let i = 0; i < 10 && status !== 429; i++) status = (await answer(guarded, 'GET', '/system_status', user)).status;
    expect(status).toBe(429);
  });
});

describe('the schemas refuse drift', () => {
  it('a field the schema does not name, or one missing, fails', async () => {
    const { body } = await answer(onnx, 'GET', '/health');
    expect(onnx.check('/health', 'GET', 200, { ...body, extra: 1 }).errors).not.toEqual([]);
    expect(onnx.check('/health', 'GET', 200, { status: body.status }).errors).not.toEqual([]);
    const status = (await answer(onnx, 'GET', '/system_status')).body;
    expect(onnx.check('/system_status', 'GET', 200, { ...status, queue: { ...status.queue, extra: 1 } }).errors).not.toEqual([]);
  });

  it("fields in another order than the schema's fail (the workshop's clients get them in one order)", async () => {
    const { body } = await answer(onnx, 'POST', '/predict', form(jpeg));
    const [first] = body.predictions;
    const swapped = { ...body, predictions: [{ probability: first.probability, class_name: first.class_name, confidence: first.confidence }] };
    expect(onnx.check('/predict', 'POST', 200, swapped).errors).toEqual([
      '(body).predictions[0] fields in the order probability, class_name, confidence; the schema lists class_name, probability, confidence',
    ]);
    expect(onnx.check('/predict', 'POST', 200, { cache_hit: body.cache_hit, predictions: body.predictions }).errors).not.toEqual([]);
  });

  it('with WORKERS, the reload also says how many workers reloaded (routes/reload-model.ts)', () => {
    expect(onnx.check('/reload_model', 'POST', 200, { status: 'model reloaded', model_generation: 2, workers: 2 }).errors).toEqual([]);
  });
});
