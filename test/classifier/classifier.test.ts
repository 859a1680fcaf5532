// FoodClassifier on a real exported model: a small random-weight FoodClassifier written by
// scripts/export_model.py into a temporary folder, real JPEGs made with sharp, the real addon.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FoodClassifier, softmax, topClasses } from '../../src/classifier/classifier.js';
import { readModelFolder } from '../../src/classifier/model-folder.js';
import { ModelError } from '../../src/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = process.env.TORCH_NODE_MODEL_PYTHON || path.join(REPO, '.venv', 'bin', 'python');

let dir: string;
let classifier: FoodClassifier;
let red: Buffer;
let green: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'classifier-'));
  const special = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const words = ['image', 'of', 'food', 'pizza', 'steak', 'sushi', 'a', 'photo', 'dish', '##s'];
  writeFileSync(path.join(dir, 'vocab.txt'), `${[...special, ...words].join('\n')}\n`);
  writeFileSync(path.join(dir, 'classes.json'), JSON.stringify({ pizza: 0, steak: 1, sushi: 2 }));
  execFileSync(
    PYTHON,
    [
      'scripts/export_model.py',
      '--random',
      'small',
      '--num-classes',
      '3',
      '--seed',
      '3',
      '--class-mapping',
      path.join(dir, 'classes.json'),
      '--vocab',
      path.join(dir, 'vocab.txt'),
      '--out',
      path.join(dir, 'model'),
    ],
    { cwd: REPO, stdio: 'pipe' },
  );
  classifier = await FoodClassifier.load(await readModelFolder(path.join(dir, 'model')), { device: 'cpu', threads: 1 });
  const jpeg = (r: number, g: number, b: number) =>
    sharp({ create: { width: 320, height: 240, channels: 3, background: { r, g, b } } })
      .jpeg()
      .toBuffer();
  [red, green] = await Promise.all([jpeg(200, 30, 20), jpeg(20, 180, 40)]);
}, 180_000);

afterAll(async () => {
  await classifier?.retire();
  rmSync(dir, { recursive: true, force: true });
});

describe('FoodClassifier', () => {
  it('answers every class, most probable first, with probabilities summing to 1', async () => {
    const top = await classifier.predict(red, 'Image of food');
    expect(top.map((p) => p.className).sort()).toEqual(['pizza', 'steak', 'sushi']);
    for (const p of top) expect(p.className).toBe(['pizza', 'steak', 'sushi'][p.index]);
    expect(top.reduce((sum, p) => sum + p.probability, 0)).toBeCloseTo(1, 10);
    for (let i = 1; i < top.length; i++) expect(top[i - 1].probability).toBeGreaterThanOrEqual(top[i].probability);
  });

  it('gives the same answer for the same input, and depends on the image and on the text', async () => {
    const [a, b, otherImage, otherText] = await Promise.all([
      classifier.predict(red, 'Image of food'),
      classifier.predict(red, 'Image of food'),
      classifier.predict(green, 'Image of food'),
      classifier.predict(red, 'a photo of sushi dishes'),
    ]);
    // The same classes in the same order, the same probabilities to float precision: a and b may have shared a
    // batch (different rows of one forward), where the last bits of a float can differ.
    expect(b.map((p) => p.className)).toEqual(a.map((p) => p.className));
    b.forEach((p, i) => {
      expect(Math.abs(p.probability - a[i].probability)).toBeLessThan(1e-6);
    });
    const probabilities = (top: typeof a) => top.map((p) => `${p.className}:${p.probability}`).sort();
    expect(probabilities(otherImage)).not.toEqual(probabilities(a));
    expect(probabilities(otherText)).not.toEqual(probabilities(a));
  });

  it('caches tokenised texts', async () => {
    const before = classifier.tokenCache;
    await classifier.predict(red, 'a text never seen before');
    await classifier.predict(red, 'a text never seen before');
    const after = classifier.tokenCache;
    expect(after.misses - before.misses).toBe(1);
    expect(after.hits - before.hits).toBe(1);
  });

  it('refuses a model whose logits do not match the class mapping', async () => {
    const folder = await readModelFolder(path.join(dir, 'model'));
    const wrong = { ...folder, classNames: ['pizza', 'steak'] };
    const err = await FoodClassifier.load(wrong, { device: 'cpu', threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelError).code).toBe('ERR_MODEL_MISMATCH');
    expect((err as ModelError).message).toContain('has 2 classes (expected [1, 2])');
  });

  it('retire() lets the predictions already started finish, then refuses new ones', async () => {
    const other = await FoodClassifier.load(await readModelFolder(path.join(dir, 'model')), { device: 'cpu', threads: 1 });
    const events: string[] = [];
    const running = Promise.all([red, green, red].map((image, i) => other.predict(image).then(() => events.push(`predict ${i}`))));
    const retired = other.retire().then(() => events.push('retired'));
    await Promise.all([running, retired]);
    expect(events.slice(-1)).toEqual(['retired']);
    expect(events.filter((e) => e.startsWith('predict'))).toHaveLength(3);
    await expect(other.predict(red)).rejects.toMatchObject({ code: 'ERR_MODEL_DISPOSED' });
  });

  it('a hold taken before retire() keeps the model for a prediction started after it (a request awaiting the cache)', async () => {
    const other = await FoodClassifier.load(await readModelFolder(path.join(dir, 'model')), { device: 'cpu', threads: 1 });
    const expected = await classifier.predict(red);
    const release = other.acquire();
    let retired = false;
    const retiring = other.retire().then(() => {
      retired = true;
    });
    // The reload has happened; the request that held the classifier now gets to its prediction.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(retired).toBe(false);
    const got = await other.predict(red);
    expect(got.map((p) => p.className)).toEqual(expected.map((p) => p.className));
    expect(retired).toBe(false);
    release();
    release(); // a second call changes nothing
    await retiring;
    expect(retired).toBe(true);
    expect(() => other.acquire()).toThrow(expect.objectContaining({ code: 'ERR_MODEL_DISPOSED' }));
  });
});

describe('softmax and topClasses', () => {
  it('are stable for large logits and break ties by index', () => {
    const p = softmax([1000, 1000, 999]);
    expect(Array.from(p, (v) => v.toFixed(6))).toEqual(['0.422319', '0.422319', '0.155362']);
    expect(topClasses(p, ['a', 'b', 'c'], 5).map((t) => t.className)).toEqual(['a', 'b', 'c']);
    expect(topClasses(p, ['a', 'b', 'c'], 1)).toEqual([{ className: 'a', index: 0, probability: p[0] }]);
  });
});
