// The service and its model folder's integrity: a file that differs from model.json's SHA-256 is refused at start
// and at reload (the old model keeps serving), and a failed reload's answer never shows a file's content.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { expectPredictionBody, reload } from '../helpers/http.js';
import { DEFAULT_MODEL_DIR, getJson, predict, startServer, type TestServer, useServers } from '../helpers/server.js';

let dir: string;
let server: TestServer;
let image: Buffer;
const file = (name: string) => path.join(dir, name);
const restore = (name: string) => {
  rmSync(file(name), { force: true });
  copyFileSync(path.join(DEFAULT_MODEL_DIR, name), file(name));
};

/** XORs 4096 bytes in the middle of `name`: the same size, other weights (they load, and answer otherwise). */
function corrupt(name: string): void {
  const bytes = readFileSync(file(name));
  const middle = Math.floor(bytes.length / 2);
  for (let i = middle; i < middle + 4096; i++) bytes[i] ^= 0x5a;
  writeFileSync(file(name), bytes);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'model-integrity-'));
  for (const name of readdirSync(DEFAULT_MODEL_DIR)) copyFileSync(path.join(DEFAULT_MODEL_DIR, name), file(name));
  [server, image] = await Promise.all([
    start({ MODEL_DIR: dir }),
    sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 120, b: 40 } } })
      .jpeg()
      .toBuffer(),
  ]);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Registered after the folder's afterAll, so run before it: the server stops, then its folder goes.
const start = useServers();

describe("the model folder against model.json's SHA-256", () => {
  it('4096 bytes changed in head.onnx: the reload answers 500 saying so, and the old model keeps serving the same answers', async () => {
    const { model_generation: generation, model_files: files } = (await getJson(server.url, '/system_status')).body;
    expect(files).toContain('head.onnx');
    const before = await predict(server.url, image, 'integrity');
    corrupt('head.onnx');
    try {
      const res = await reload(server.url);
      expect(res.status).toBe(500);
      expect(res.body).toEqual({
        detail: 'Reload failed: head.onnx does not match the SHA-256 in model.json (changed or corrupt since export); the current model keeps serving',
      });
      expect((await getJson(server.url, '/system_status')).body.model_generation).toBe(generation);
      const after = await predict(server.url, image, 'integrity');
      expect(after.status).toBe(200);
      expect(after.body.predictions).toEqual(before.body.predictions);
      // the same pixels in other bytes: computed by the old model
      const again = await predict(server.url, await sharp(image).jpeg({ quality: 100 }).toBuffer(), 'integrity');
      expect(again.body.cache_hit).toBe(false);
      expect(again.body.predictions.map((p: { class_name: string }) => p.class_name)).toEqual(
        before.body.predictions.map((p: { class_name: string }) => p.class_name),
      );
    } finally {
      restore('head.onnx');
    }
    expect((await reload(server.url)).status).toBe(200);
  }, 60_000);

  it('a start on a changed file: exit, naming the file and model.json', async () => {
    corrupt('head.onnx');
    try {
      const err = await startServer({ MODEL_DIR: dir }).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain(`Cannot start: Changed or corrupt ${file('head.onnx')}: it does not match model.json's SHA-256`);
    } finally {
      restore('head.onnx');
    }
  }, 60_000);
});

describe("a failed reload's answer never shows a file's content", () => {
  it.each([
    ['a class mapping that is not JSON', () => writeFileSync(file('class_mapping.json'), 'SECRET-TOKEN-abc')],
    ['a class mapping that is JSON, but not a mapping', () => writeFileSync(file('class_mapping.json'), '{"pizza": "SECRET-TOKEN-abc"}')],
    [
      'a class mapping that links to another file',
      () => {
        writeFileSync(path.join(dir, 'elsewhere.txt'), 'SECRET-TOKEN-abc and more');
        unlinkSync(file('class_mapping.json'));
        symlinkSync(path.join(dir, 'elsewhere.txt'), file('class_mapping.json'));
      },
    ],
    ['a model.json that is not JSON', () => writeFileSync(file('model.json'), '{"max_length": SECRET-TOKEN-abc}')],
    ['a model.json with a max_length of text', () => writeFileSync(file('model.json'), '{"max_length": "SECRET-TOKEN-abc"}')],
  ])(
    '%s',
    async (_what, change) => {
      change();
      try {
        const res = await reload(server.url);
        expect(res.status).toBe(500);
        expect(res.body.detail).toMatch(/^Reload failed: (class_mapping|model)\.json is invalid: /);
        expect(JSON.stringify(res.body)).not.toContain('SECRET');
        expect(JSON.stringify(res.body)).not.toContain(dir);
      } finally {
        restore('class_mapping.json');
        restore('model.json');
      }
      const ok = await predict(server.url, image, 'after a failed reload');
      expect(ok.status).toBe(200);
      expectPredictionBody(ok.body);
    },
    60_000,
  );
});
