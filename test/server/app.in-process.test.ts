// The Express app (createApp, src/server/app.ts) in-process with a stub in place of the model: the routes, the 404
// and 405, and the one error handler, answered over real HTTP (127.0.0.1, a free port) in milliseconds, with no
// model folder read and no forward run. The stub has only what the routes read of the ModelManager and of its
// FoodClassifier; anything else the app asks of it throws (a 500 here), so the stub cannot hide what the app
// really uses. What the real model answers is tested against a running service (api.test.ts) and in-process
// with the default model (api-schema.test.ts).
import type { Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { Classification, ClassifyOptions, FoodClassifier } from '../../src/classifier/classifier.js';
import { ImageError } from '../../src/classifier/image-error.js';
import { loadConfig } from '../../src/server/config.js';
import type { ModelManager } from '../../src/server/model-manager.js';
import { listenInProcess } from '../helpers/in-process-app.js';
import { multipartBody } from '../helpers/http.js';
import { DEFAULT_MODEL_DIR, REPO } from '../helpers/server.js';

const CLASS_NAMES = ['pizza', 'steak', 'raw_fish'];

/**
 * `members` as a `T`, for the members it has; reading any other (but `then`, which `await` probes, and symbols)
 * throws, naming it. The app's own TypeScript types cannot say which members it uses: this says it at run time.
 */
function strictStub<T>(name: string, members: object): T {
  return new Proxy(members, {
    get(target, key, receiver) {
      if (typeof key === 'symbol' || key === 'then' || key in target) return Reflect.get(target, key, receiver);
      strayReads.push(`${name}.${key}`);
      throw new Error(`the app read ${name}.${key}, which this test's stub does not have`);
    },
  }) as T;
}
/** What the app read that the stubs lack (its 500 says nothing: the log is silent), checked after each test. */
const strayReads: string[] = [];

/** What the stub model does with the next classify() calls (a test sets it; afterEach puts the default back). */
type Behaviour = (image: Uint8Array, text: string) => Promise<Classification>;
const fixed: Behaviour = async () => ({
  predictions: [
    { className: 'raw_fish', index: 2, probability: 0.875 },
    { className: 'pizza', index: 0, probability: 0.125 },
  ],
  preprocessMs: 1,
  textFeaturesCached: undefined,
});
let behaviour: Behaviour = fixed;
/** The stub's calls: the bytes and the text it was given. */
const calls: { image: string; text: string }[] = [];
/** Holds taken by acquire() and not released yet. */
let held = 0;

const classifier = {
  device: 'cpu',
  modelId: 'stub-model-1',
  folder: strictStub('models.classifier.folder', { maxLength: 128, classNames: CLASS_NAMES }),
  acquire(): () => void {
    held++;
    let released = false;
    return () => {
      if (!released) held--;
      released = true;
    };
  },
  async classify(image: Uint8Array, text: string, options: ClassifyOptions = {}): Promise<Classification> {
    calls.push({ image: Buffer.from(image).toString('utf8'), text });
    options.onForwardStart?.();
    return behaviour(image, text);
  },
};
const models = strictStub<ModelManager>('models', {
  classifier: strictStub<FoodClassifier>('models.classifier', classifier),
  generation: 1,
  reloads: { success: 0, failure: 0 },
});

let server: Server;
let url: string;

beforeAll(async () => {
  // The model folder is named (the configuration requires one) but never read: the model is the stub.
  const config = loadConfig({ MODEL_DIR: DEFAULT_MODEL_DIR, ENV_FILE: '/dev/null' }, REPO);
  ({ server, url } = await listenInProcess(config, models));
});

afterAll(async () => {
  if (!server) return;
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
});

afterEach(() => {
  behaviour = fixed;
  classifier.device = 'cpu';
  expect(strayReads.splice(0), 'members of the model the app read that the stub lacks').toEqual([]);
  // Every request lets go of the model it took, whatever its answer.
  expect(held, 'holds on the model not released').toBe(0);
});

async function request(method: string, pathname: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; body: any }> {
  const res = await fetch(`${url}${pathname}`, { ...init, method });
  const type = res.headers.get('content-type');
  const text = await res.text();
  return { status: res.status, type, body: type?.startsWith('application/json') ? JSON.parse(text) : text };
}

/** A multipart /predict request: `image` as the file (its bytes are the stub's to judge), and a text. */
function form(image: string | undefined, text?: string): RequestInit {
  const { body, contentType } = multipartBody(image === undefined ? undefined : Buffer.from(image), text);
  return { body: new Uint8Array(body), headers: { 'content-type': contentType } };
}

describe('GET /health and /classes: what the model says', () => {
  it('GET /health: 200 {"status":"healthy","device":...}, the device from the model (cuda:N is "cuda")', async () => {
    expect(await request('GET', '/health')).toEqual({ status: 200, type: 'application/json; charset=utf-8', body: { status: 'healthy', device: 'cpu' } });
    classifier.device = 'cuda:1';
    expect((await request('GET', '/health')).body).toEqual({ status: 'healthy', device: 'cuda' });
  });

  it("GET /classes: the model's class names, as its class mapping has them", async () => {
    expect(await request('GET', '/classes')).toMatchObject({ status: 200, body: { classes: CLASS_NAMES } });
  });
});

describe("paths and methods the service has no route for: FastAPI's bodies", () => {
  it.each([
    ['GET', '/no-such-route'],
    ['POST', '/no-such-route'],
    ['GET', '/HEALTH'], // routes are case-sensitive
    ['GET', '/health/'], // and a trailing slash is another path
  ])('%s %s: 404 {"detail":"Not Found"}', async (method, pathname) => {
    expect(await request(method, pathname)).toEqual({ status: 404, type: 'application/json; charset=utf-8', body: { detail: 'Not Found' } });
  });

  it.each([
    ['POST', '/health', 'GET'],
    ['DELETE', '/classes', 'GET'],
    ['GET', '/predict', 'POST'],
  ])('%s %s: 405 {"detail":"Method Not Allowed"}, Allow: %s', async (method, pathname, allowed) => {
    const res = await fetch(`${url}${pathname}`, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allowed);
    expect(await res.json()).toEqual({ detail: 'Method Not Allowed' });
  });
});

describe('POST /predict', () => {
  it("without a file: 422, FastAPI's missing field, and the model is not asked", async () => {
    const missing = { detail: [{ type: 'missing', loc: ['body', 'image'], msg: 'Field required', input: null }] };
    const before = calls.length;
    expect(await request('POST', '/predict', form(undefined, 'Image of pizza'))).toMatchObject({ status: 422, body: missing });
    expect(await request('POST', '/predict')).toMatchObject({ status: 422, body: missing });
    const json = { body: JSON.stringify({ image: 'pizza.jpg' }), headers: { 'content-type': 'application/json' } };
    expect(await request('POST', '/predict', json)).toMatchObject({ status: 422, body: missing });
    expect(calls.length).toBe(before);
  });

  it('the image sent as a text field: 422 value_error, naming it', async () => {
    const { body, contentType } = multipartBody(undefined, 'pizza');
    const asText = body.toString('latin1').replace('name="text"', 'name="image"');
    const res = await request('POST', '/predict', { body: asText, headers: { 'content-type': contentType } });
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual([
      { type: 'value_error', loc: ['body', 'image'], msg: 'Expected a file upload for image but received a text field', input: 'pizza' },
    ]);
  });

  it("a file: the model's predictions in the workshop's shape; the same file and text again: from the cache", async () => {
    const before = calls.length;
    const first = await request('POST', '/predict', form('photo one', 'Image of sushi'));
    expect(first).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      body: {
        predictions: [
          { class_name: 'raw fish', probability: 0.875, confidence: '87.50%' },
          { class_name: 'pizza', probability: 0.125, confidence: '12.50%' },
        ],
        cache_hit: false,
      },
    });
    expect(calls.slice(before)).toEqual([{ image: 'photo one', text: 'Image of sushi' }]);

    expect((await request('POST', '/predict', form('photo one', 'Image of sushi'))).body).toEqual({ ...first.body, cache_hit: true });
    expect(calls.length).toBe(before + 1);
    // another text, or no text (the workshop's default), is another question: computed
    expect((await request('POST', '/predict', form('photo one', 'Image of pizza'))).body.cache_hit).toBe(false);
    expect((await request('POST', '/predict', form('photo one'))).body.cache_hit).toBe(false);
    expect(calls.slice(before + 1).map((c) => c.text)).toEqual(['Image of pizza', 'Image of food']);
  });
});

describe('the error handler: what a failure of the model answers', () => {
  it("an ImageError: 400 with its message alone (not its details, the decoder's words)", async () => {
    behaviour = async () => {
      throw new ImageError('The uploaded image is truncated or corrupt', 'ERR_IMAGE_DECODE', 'libvips: premature end of /tmp/secret.jpg');
    };
    expect(await request('POST', '/predict', form('truncated photo'))).toEqual({
      status: 400,
      type: 'application/json; charset=utf-8',
      body: { detail: 'The uploaded image is truncated or corrupt' },
    });
  });

  it('any other error: 500 {"detail":"Classification error"}, telling nothing of the cause; nothing is cached', async () => {
    behaviour = async () => {
      throw new Error('forward failed in /srv/models/best_model.pth');
    };
    const res = await request('POST', '/predict', form('unlucky photo'));
    expect(res).toEqual({ status: 500, type: 'application/json; charset=utf-8', body: { detail: 'Classification error' } });
    behaviour = fixed;
    expect((await request('POST', '/predict', form('unlucky photo'))).body.cache_hit).toBe(false);
  });
});
