// The contract both backends keep (src/model.ts), checked the same way on each: TorchModel on the default
// model's best_model.pth and OnnxModel on its best_model.onnx. Argument mistakes throw synchronously; every
// other failure rejects with a ModelError and a stable code; dispose() is final and may be called twice.
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TextTokenizer } from '../src/classifier/tokenizer.js';
import { type InferenceModel, ModelError, Tensor, TorchModel } from '../src/index.js';
import { OnnxModel } from '../src/onnx/index.js';
import { DEFAULT_MODEL_DIR } from './helpers/server.js';

interface Backend {
  name: 'torch' | 'onnx';
  file: string;
  load(file: string, options?: Record<string, unknown>): Promise<InferenceModel>;
}

const BACKENDS: Backend[] = [
  { name: 'torch', file: path.join(DEFAULT_MODEL_DIR, 'best_model.pth'), load: (f, o) => TorchModel.load(f, { device: 'cpu', threads: 1, ...o }) },
  { name: 'onnx', file: path.join(DEFAULT_MODEL_DIR, 'best_model.onnx'), load: (f, o) => OnnxModel.load(f, { threads: 1, ...o }) },
];

let text: { inputIds: BigInt64Array; attentionMask: BigInt64Array };

beforeAll(async () => {
  const tokenizer = await TextTokenizer.fromVocab(path.join(DEFAULT_MODEL_DIR, 'vocab.txt'));
  text = await tokenizer.encode('Image of food');
});

/** The demo model's three inputs (an image, token ids, an attention mask). */
function inputs(): Tensor[] {
  return [
    Tensor.float32(new Float32Array(3 * 224 * 224).fill(0.1), [1, 3, 224, 224]),
    Tensor.int64(text.inputIds, [1, 128]),
    Tensor.int64(text.attentionMask, [1, 128]),
  ];
}

describe.each(BACKENDS)('the model contract: $name', (backend) => {
  let model: InferenceModel;
  beforeAll(async () => {
    model = await backend.load(backend.file);
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it('says what runs it', () => {
    expect(model.device).toBe('cpu');
    expect(model.runtime).toMatchObject({ backend: backend.name, threads: 1, version: expect.any(String) });
  });

  it('load(): argument mistakes throw at once; a missing file rejects with ModelError ERR_MODEL_NOT_FOUND', async () => {
    expect(() => backend.load(backend.file, { threads: 0 })).toThrow(RangeError);
    expect(() => backend.load(backend.file, { colour: 'red' })).toThrow(TypeError);
    expect(() => backend.load('' as string)).toThrow(TypeError);
    const missing = backend.load(path.join(DEFAULT_MODEL_DIR, 'no-such-model'));
    await expect(missing).rejects.toBeInstanceOf(ModelError);
    await expect(missing).rejects.toMatchObject({ code: 'ERR_MODEL_NOT_FOUND' });
  });

  it('forward(): argument mistakes throw at once with the same message in both, nothing queued; a forward that fails rejects with ModelError ERR_FORWARD', async () => {
    expect(() => model.forward('not tensors' as never)).toThrow(TypeError);
    const [image, ids, mask] = inputs();
    expect(() => model.forward([{ dtype: 'float32' }, ids, mask] as never)).toThrow(
      new TypeError('Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[0] (image) but received an object of type Object'),
    );
    // The count is checked against the model's inputs, by name, before anything runs.
    const takes = 'The model takes 3 inputs (image, input_ids, attention_mask)';
    expect(() => model.forward([image, ids])).toThrow(new RangeError(`${takes} but received 2`));
    expect(() => model.forward([image, ids])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => model.forward({ image, input_ids: ids })).toThrow(new TypeError(`Missing input attention_mask: ${takes.replace('The model', 'the model')}`));
    // A forward that fails in the backend: a batch of 2 images with one text.
    const failed = model.forward([Tensor.float32(new Float32Array(2 * 3 * 224 * 224), [2, 3, 224, 224]), ids, mask]);
    await expect(failed).rejects.toBeInstanceOf(ModelError);
    await expect(failed).rejects.toMatchObject({ code: 'ERR_FORWARD' });
    const [logits] = await model.forward(inputs());
    expect(logits.shape).toEqual([1, 3]);
    const named = await model.forward({ image, input_ids: ids, attention_mask: mask });
    expect(named[0].data).toEqual(logits.data);
  });

  it('names its inputs (and ONNX its outputs) the same way', () => {
    expect(model.inputNames).toEqual(['image', 'input_ids', 'attention_mask']);
    expect(model.inputs.map((i) => [i.name, i.type])).toEqual([
      ['image', 'Tensor'],
      ['input_ids', 'Tensor'],
      ['attention_mask', 'Tensor'],
    ]);
    expect(model.outputNames).toEqual(backend.name === 'onnx' ? ['logits'] : []);
  });

  it('dispose(): the forwards already called finish; later ones reject with ModelError ERR_MODEL_DISPOSED; twice is harmless', async () => {
    const other = await backend.load(backend.file);
    const pending = other.forward(inputs());
    await other.dispose();
    expect((await pending)[0].shape).toEqual([1, 3]);
    const after = other.forward(inputs());
    await expect(after).rejects.toBeInstanceOf(ModelError);
    await expect(after).rejects.toMatchObject({ code: 'ERR_MODEL_DISPOSED' });
    await expect(other.dispose()).resolves.toBeUndefined();
  });
});
