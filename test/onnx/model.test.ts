// OnnxModel on the default model's best_model.onnx: the same logits as TorchModel on best_model.pth (within
// 1e-4) and the same top 5 on real photos, in a worker thread and on the main thread; its errors; dispose.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FoodClassifier } from '../../src/classifier/classifier.js';
import { readModelFolder } from '../../src/classifier/model-folder.js';
import { preprocessImage } from '../../src/classifier/preprocess.js';
import { TextTokenizer } from '../../src/classifier/tokenizer.js';
import { ModelError, Tensor, TorchError, TorchModel } from '../../src/index.js';
import { OnnxModel } from '../../src/onnx/index.js';
import { sessionOptions } from '../../src/onnx/protocol.js';
import { DEFAULT_MODEL_DIR, REPO } from '../helpers/server.js';
import { absDiff, sharedPhotos } from '../helpers/torchvision.js';

const ONNX = path.join(DEFAULT_MODEL_DIR, 'best_model.onnx');
const PTH = path.join(DEFAULT_MODEL_DIR, 'best_model.pth');
const photos = sharedPhotos();
const files = [...photos.samples, ...photos.val.filter((_, i) => i % 5 === 0)];

let torch: TorchModel;
let tokenizer: TextTokenizer;
let inputs: Tensor[][];

/** The model's three inputs for a photo (or, without ../shared/data, a synthetic image) and a text. */
async function inputsFor(image: Float32Array, text: string): Promise<Tensor[]> {
  const { inputIds, attentionMask } = await tokenizer.encode(text);
  return [Tensor.float32(image, [1, 3, 224, 224]), Tensor.int64(inputIds, [1, 128]), Tensor.int64(attentionMask, [1, 128])];
}

beforeAll(async () => {
  torch = await TorchModel.load(PTH, { device: 'cpu', threads: 2 });
  tokenizer = await TextTokenizer.fromVocab(path.join(DEFAULT_MODEL_DIR, 'vocab.txt'));
  const images = files.length
    ? await Promise.all(files.map((f) => preprocessImage(readFileSync(f))))
    : Array.from({ length: 4 }, (_, k) => Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * (k + 1) * 0.001)));
  if (!files.length) console.warn('[onnx] ../shared/data is absent: synthetic images instead of photos');
  inputs = await Promise.all(images.map((image, i) => inputsFor(image, ['Image of food', 'a pizza', 'sushi rolls', 'steak'][i % 4])));
});

afterAll(async () => {
  await torch?.dispose();
});

function ranking(logits: ArrayLike<number>): number[] {
  return Array.from(logits, (_, i) => i).sort((x, y) => logits[y] - logits[x] || x - y);
}

describe.each(['worker', 'main'] as const)('OnnxModel, thread: %s', (thread) => {
  let onnx: OnnxModel;
  beforeAll(async () => {
    onnx = await OnnxModel.load(ONNX, { threads: 2, thread });
  });
  afterAll(async () => {
    await onnx?.dispose();
  });

  it("reads the graph's inputs and outputs", () => {
    expect(onnx.info).toMatchObject({
      path: ONNX,
      device: 'cpu',
      threads: 2,
      thread,
      inputNames: ['image', 'input_ids', 'attention_mask'],
      outputNames: ['logits'],
    });
    expect(onnx.info.onnxruntimeVersion).toMatch(/^1\.\d+\.\d+$/);
  });

  it(`the same logits as LibTorch within 1e-4 and the same ranking, on ${files.length || 4} inputs`, async () => {
    let worst = 0;
    for (const example of inputs) {
      const [[a], [b]] = await Promise.all([onnx.forward(example), torch.forward(example)]);
      expect(a.dtype).toBe('float32');
      expect(a.shape).toEqual(b.shape);
      const diff = absDiff(a.data as Float32Array, b.data as Float32Array).max;
      worst = Math.max(worst, diff);
      expect(diff).toBeLessThan(1e-4);
      expect(ranking(a.data as Float32Array)).toEqual(ranking(b.data as Float32Array));
    }
    console.log(`[onnx ${thread}] max |logit difference| vs LibTorch over ${inputs.length} inputs: ${worst.toExponential(2)}`);
  });

  it('runs a batch of 8 (the export has a dynamic batch axis)', async () => {
    const [image, ids, mask] = inputs[0];
    const batch = (t: Tensor, n: number): Tensor => {
      const data = new (t.data.constructor as new (n: number) => Float32Array)(t.data.length * n);
      for (let i = 0; i < n; i++) data.set(t.data as Float32Array, i * t.data.length);
      return new Tensor(t.dtype, data as never, [n, ...t.shape.slice(1)]);
    };
    const [logits] = await onnx.forward([batch(image, 8), batch(ids, 8), batch(mask, 8)]);
    expect(logits.shape).toEqual([8, 3]);
    const [one] = await onnx.forward(inputs[0]);
    expect(absDiff((logits.data as Float32Array).subarray(21, 24), one.data as Float32Array).max).toBeLessThan(1e-4);
  });

  it("inputs the graph's metadata rules out are refused at once; a forward that fails rejects with a ModelError (not a TorchError); the model keeps working", async () => {
    expect(() => onnx.forward(inputs[0].slice(0, 2))).toThrow(new RangeError('The model takes 3 inputs (image, input_ids, attention_mask) but received 2'));
    const wrongShape = [Tensor.float32(new Float32Array(3 * 100 * 100), [1, 3, 100, 100]), inputs[0][1], inputs[0][2]];
    expect(() => onnx.forward(wrongShape)).toThrow(
      /^Expected shape \[.*, 3, 224, 224\] for inputs\[0\] \(image\) but received shape \[1, 3, 100, 100\] \(dimension 2\)$/,
    );
    const wrongType = [inputs[0][0], Tensor.int32(new Int32Array(128), [1, 128]), inputs[0][2]];
    expect(() => onnx.forward(wrongType)).toThrow(new TypeError('Expected a int64 tensor for inputs[1] (input_ids) but received a int32 tensor'));
    // two images and one text: each input is right on its own, the graph fails
    const mismatched = [Tensor.float32(new Float32Array(2 * 3 * 224 * 224), [2, 3, 224, 224]), inputs[0][1], inputs[0][2]];
    const err = await onnx.forward(mismatched).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect(err).not.toBeInstanceOf(TorchError);
    expect(err).toMatchObject({ code: 'ERR_FORWARD' });
    expect((await onnx.forward(inputs[0]))[0].shape).toEqual([1, 3]);
  });

  it("leaves the caller's input arrays as they were", async () => {
    const before = Float32Array.from(inputs[1][0].data as Float32Array);
    await onnx.forward(inputs[1]);
    expect(inputs[1][0].data).toEqual(before);
  });
});

describe('OnnxModel.load and dispose', () => {
  it('a missing file, a file that is not ONNX, bad options', async () => {
    await expect(OnnxModel.load('/nonexistent.onnx')).rejects.toMatchObject({ code: 'ERR_MODEL_NOT_FOUND' });
    await expect(OnnxModel.load(PTH)).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD', message: /Cannot load .*best_model\.pth with ONNX Runtime/ });
    await expect(OnnxModel.load(PTH, { thread: 'main' })).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
    // argument mistakes throw at once, as TorchModel.load's (test/model-contract.test.ts)
    expect(() => OnnxModel.load(ONNX, { threads: 0 })).toThrow(RangeError);
    expect(() => OnnxModel.load(ONNX, { thread: 'gpu' as never })).toThrow(TypeError);
    expect(() => OnnxModel.load(ONNX, { device: 'gpu' } as never)).toThrow(/device/);
    expect(() => OnnxModel.load(ONNX, { colour: 'red' } as never)).toThrow(/colour/);
    expect(() => OnnxModel.load(ONNX, { spinning: 'no' } as never)).toThrow("Expected a boolean for spinning but received 'no' of type string");
  });

  it('spinning reaches ONNX Runtime as its session.intra_op.allow_spinning entry (which it takes unchecked: a misspelt key is ignored)', () => {
    expect(sessionOptions({ threads: 2, spinning: false }).extra).toEqual({ session: { intra_op: { allow_spinning: '0' } } });
    expect(sessionOptions({ threads: 2, spinning: true })).not.toHaveProperty('extra');
    expect(sessionOptions({ threads: 3, spinning: true }).intraOpNumThreads).toBe(3);
  });

  it('spinning off (as the service loads its sessions): the same outputs, in a worker and on the main thread', async () => {
    const reference = await OnnxModel.load(ONNX, { threads: 2 });
    expect(reference.info.spinning).toBe(true);
    const expected = (await reference.forward(inputs[0]))[0].data;
    await reference.dispose();
    for (const thread of ['worker', 'main'] as const) {
      const onnx = await OnnxModel.load(ONNX, { threads: 2, thread, spinning: false });
      expect(onnx.info).toMatchObject({ spinning: false, thread });
      expect((await onnx.forward(inputs[0]))[0].data).toEqual(expected);
      await onnx.dispose();
    }
  });

  it('dispose lets the forwards already called finish, then refuses new ones', async () => {
    const onnx = await OnnxModel.load(ONNX, { threads: 1 });
    const pending = [onnx.forward(inputs[0]), onnx.forward(inputs[1])];
    const disposed = onnx.dispose();
    const results = await Promise.all(pending);
    expect(results.map((r) => r[0].shape)).toEqual([
      [1, 3],
      [1, 3],
    ]);
    await disposed;
    await expect(onnx.forward(inputs[0])).rejects.toMatchObject({ code: 'ERR_MODEL_DISPOSED' });
  });
});

describe('FoodClassifier with the ONNX backend', () => {
  it('the same top 5 as with LibTorch, probabilities within 1e-4', async () => {
    const [viaTorch, viaOnnx] = await Promise.all([
      readModelFolder(DEFAULT_MODEL_DIR).then((f) => FoodClassifier.load(f, { threads: 1, device: 'cpu' })),
      readModelFolder(DEFAULT_MODEL_DIR, { backend: 'onnx' }).then((f) => FoodClassifier.load(f, { threads: 1 })),
    ]);
    try {
      expect(viaOnnx.backend).toBe('onnx');
      const image = files.length ? readFileSync(files[0]) : undefined;
      if (!image) return;
      const [a, b] = await Promise.all([viaTorch.predict(image, 'a pizza'), viaOnnx.predict(image, 'a pizza')]);
      expect(b.map((p) => p.className)).toEqual(a.map((p) => p.className));
      b.forEach((p, i) => {
        expect(Math.abs(p.probability - a[i].probability)).toBeLessThan(1e-4);
      });
    } finally {
      await Promise.all([viaTorch.retire(), viaOnnx.retire()]);
    }
  });

  it('a folder without best_model.onnx is refused, naming it', async () => {
    await expect(readModelFolder(path.join(DEFAULT_MODEL_DIR, '..', 'test'), { backend: 'onnx' })).rejects.toMatchObject({
      code: 'ERR_MODEL_FILE_MISSING',
      message: /Missing the model \(ONNX\): .*best_model\.onnx/,
    });
  });
});

describe.skipIf(!existsSync(path.join(REPO, 'dist', 'onnx', 'index.js')))(
  "OnnxModel's worker in a process started with Node options (runs dist/: skipped until `npm run build:ts` made it)",
  () => {
    const script = `
      import { OnnxModel } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'dist', 'onnx', 'index.js')).href)};
      const model = await OnnxModel.load(${JSON.stringify(path.join(DEFAULT_MODEL_DIR, 'head.onnx'))}, { threads: 1 });
      console.log(JSON.stringify(model.info.inputNames));
      await model.dispose();
    `;
    // A worker inherits them; Node refuses one given --input-type, and refuses V8 flags given explicitly.
    it.each([['--input-type=module'], ['--max-old-space-size=512', '--input-type=module'], ['--max-old-space-size=512', '--expose-gc', '--input-type=module']])(
      'node %s ... -e starts it',
      (...options: string[]) => {
        const r = spawnSync(process.execPath, [...options, '-e', script], { encoding: 'utf8', timeout: 60_000 });
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout.trim())).toEqual(['image', 'text_features']);
      },
    );
  },
);
