// The files a model runs from are checked against the SHA-256 (and size) that model.json recorded at export: a
// block of the weights changed in place loads fine and answers otherwise, so the load is refused (ERR_MODEL_CHECKSUM,
// naming the file). Nothing to check without model.json or without a hash for the file.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FoodClassifier } from '../../src/classifier/classifier.js';
import { type Backend, ModelFolderError, readModelFolder } from '../../src/classifier/model-folder.js';

const MODELS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

let dir: string;
const file = (name: string) => path.join(dir, name);
const restore = (name: string) => copyFileSync(path.join(MODELS, name), file(name));

/** XORs 4096 bytes in the middle of `name`: the same size, other weights. */
function corrupt(name: string): void {
  const bytes = readFileSync(file(name));
  const middle = Math.floor(bytes.length / 2);
  for (let i = middle; i < middle + 4096; i++) bytes[i] ^= 0x5a;
  writeFileSync(file(name), bytes);
}

async function load(backend: Backend): Promise<FoodClassifier> {
  return FoodClassifier.load(await readModelFolder(dir, { backend }), { threads: 1 });
}

async function loadError(backend: Backend): Promise<ModelFolderError> {
  const err = await load(backend).then(
    async (c) => {
      await c.retire();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelFolderError);
  return err as ModelFolderError;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'model-checksum-'));
  for (const name of readdirSync(MODELS)) copyFileSync(path.join(MODELS, name), file(name));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the model's files against model.json's SHA-256", () => {
  it.each([
    ['onnx', 'head.onnx'],
    ['torch', 'head.pth'],
  ] as const)(
    '%s: 4096 bytes changed in the middle of %s: the load is refused, naming the file',
    async (backend, name) => {
      corrupt(name);
      try {
        const err = await loadError(backend);
        expect(err.code).toBe('ERR_MODEL_CHECKSUM');
        expect(err.file).toBe(file(name));
        expect(err.message).toContain(`Changed or corrupt ${file(name)}: it does not match model.json's SHA-256`);
      } finally {
        restore(name);
      }
      // restored: it loads
      await (await load(backend)).retire();
    },
    60_000,
  );

  it.each(['class_mapping.json', 'vocab.txt'])(
    '%s changed (still valid): refused',
    async (name) => {
      const text = readFileSync(file(name), 'utf8');
      writeFileSync(file(name), name === 'vocab.txt' ? `${text}extra\n` : JSON.stringify(JSON.parse(text), null, 2));
      try {
        const err = await loadError('onnx');
        expect(err.code).toBe('ERR_MODEL_CHECKSUM');
        expect(err.file).toBe(file(name));
      } finally {
        restore(name);
      }
    },
    60_000,
  );

  it('a file model.json has no hash for, or a folder without hashes: nothing to check, it loads', async () => {
    corrupt('head.onnx');
    try {
      const metadata = JSON.parse(readFileSync(path.join(MODELS, 'model.json'), 'utf8')) as { files: Record<string, unknown> };
      delete metadata.files['head.onnx'];
      writeFileSync(file('model.json'), JSON.stringify(metadata));
      await (await load('onnx')).retire();
      writeFileSync(file('model.json'), JSON.stringify({ ...metadata, files: undefined }));
      await (await load('onnx')).retire();
    } finally {
      restore('head.onnx');
      restore('model.json');
    }
  }, 60_000);

  it('a model file from outside the folder is not the file model.json hashed: not checked', async () => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'model-elsewhere-'));
    try {
      copyFileSync(path.join(MODELS, 'best_model.onnx'), path.join(elsewhere, 'best_model.onnx'));
      const bytes = readFileSync(path.join(elsewhere, 'best_model.onnx'));
      bytes[bytes.length >> 1] ^= 1;
      writeFileSync(path.join(elsewhere, 'best_model.onnx'), bytes);
      const folder = await readModelFolder(dir, { backend: 'onnx', onnxFile: path.join(elsewhere, 'best_model.onnx') });
      expect([...(folder.checksums?.keys() ?? [])].sort()).toEqual([file('class_mapping.json'), file('vocab.txt')]);
      await (await FoodClassifier.load(folder, { threads: 1 })).retire();
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  }, 60_000);
});
