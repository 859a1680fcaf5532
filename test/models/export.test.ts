// The workshop's FoodClassifier end to end: a random-weight workshop-style training checkpoint (a dict with
// model_state_dict, and the position_ids buffer older transformers saved), converted by
// scripts/export_model.py with the project's Python (.venv, torch 1.13), loaded by this library, whose
// logits must equal the eager PyTorch model's within 1e-4; and likewise text_encoder.pth then head.pth
// composed through the library. At the workshop's full size (ResNet18 + BERT-base, ~1.6 GB of files in a
// temporary folder, about 2 minutes on 2 CPUs) and at the small size. The models load on the CPU: this is
// about the conversion, not the device. The Python is .venv/bin/python (scripts/setup.sh makes it), or
// TORCH_NODE_MODEL_PYTHON.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Tensor, TorchModel } from '../../src/index.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = process.env.TORCH_NODE_MODEL_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const TOLERANCE = 1e-4;
const SLOW = 15 * 60_000;

// Writes into the folder argv[3]: the checkpoint best_model.pth, class_mapping.json, vocab.txt, fixed inputs
// (raw little-endian image.f32, input_ids.i64, attention_mask.i64) and expected.json with the eager logits.
const MAKE_CHECKPOINT = String.raw`
import json, sys, time
from pathlib import Path
import torch
repo, size, folder = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
sys.path.insert(0, str(repo / 'scripts'))
from foodmodel.architecture import FoodClassifier, FoodClassifierConfig
start = time.perf_counter()
if size == 'full':
    config = FoodClassifierConfig.full()
    classes = [f'food_{i}' for i in range(config.num_classes)]
else:
    config = FoodClassifierConfig.small(num_classes=3, vocab_size=1000)
    classes = ['pizza', 'steak', 'sushi']
torch.manual_seed(2024)
model = FoodClassifier(config, bert='plain').eval()
state = dict(model.state_dict())
state['text_encoder.embeddings.position_ids'] = torch.arange(config.max_position_embeddings).unsqueeze(0)
torch.save({'epoch': 5, 'model_state_dict': state, 'val_acc': 0.42}, str(folder / 'best_model.pth'))
(folder / 'class_mapping.json').write_text(json.dumps({name: i for i, name in enumerate(classes)}))
special = ['[PAD]'] + [f'[unused{i}]' for i in range(99)] + ['[UNK]', '[CLS]', '[SEP]', '[MASK]']
(folder / 'vocab.txt').write_text('\n'.join(special + [f'word{i}' for i in range(500)]) + '\n')
g = torch.Generator().manual_seed(7)
batch, length = 2, config.max_length
image = torch.randn(batch, 3, 224, 224, generator=g)
input_ids = torch.zeros(batch, length, dtype=torch.long)
attention_mask = torch.zeros(batch, length, dtype=torch.long)
for row, n in enumerate([11, 97]):  # [CLS] words [SEP] then padding
    input_ids[row, :n] = torch.randint(104, 604, (n,), generator=g)
    input_ids[row, 0], input_ids[row, n - 1] = 101, 102
    attention_mask[row, :n] = 1
with torch.no_grad():
    logits = model(image, input_ids, attention_mask)
image.numpy().astype('<f4').tofile(str(folder / 'image.f32'))
input_ids.numpy().astype('<i8').tofile(str(folder / 'input_ids.i64'))
attention_mask.numpy().astype('<i8').tofile(str(folder / 'attention_mask.i64'))
json.dump({'logits': logits.flatten().tolist(), 'shape': list(logits.shape), 'torch': torch.__version__,
           'hidden_size': config.hidden_size, 'max_length': length, 'num_classes': config.num_classes,
           'seconds': time.perf_counter() - start}, open(folder / 'expected.json', 'w'))
`;

interface Expected {
  logits: number[];
  shape: number[];
  torch: string;
  hidden_size: number;
  max_length: number;
  num_classes: number;
  seconds: number;
}

interface Run {
  code: number | null;
  output: string;
  seconds: number;
}

/** Runs a command without blocking the event loop (vitest's worker keeps talking to its parent). */
function run(command: string, args: string[], input?: string): Promise<Run> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output, seconds: (performance.now() - start) / 1000 }));
    child.stdin.end(input ?? '');
  });
}

/** A copy, so that the typed array starts at offset 0 of its own buffer (aligned). */
function bytes(file: string): ArrayBuffer {
  return new Uint8Array(readFileSync(file)).buffer;
}

function logitsTensor(want: Expected): Tensor {
  return Tensor.float32(Float32Array.from(want.logits), want.shape);
}

describe.each(['small', 'full'] as const)('a %s-size workshop checkpoint converted by export_model.py', (size) => {
  let tmp: string;
  let want: Expected;
  let inputs: { image: Tensor; inputIds: Tensor; attentionMask: Tensor };
  const models: TorchModel[] = [];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    if (!existsSync(PYTHON)) {
      throw new Error(`${PYTHON} is missing: run scripts/setup.sh (it makes .venv, the model tooling's Python)`);
    }
    tmp = mkdtempSync(path.join(os.tmpdir(), `food-export-${size}-`));
    const made = await run(PYTHON, ['-', REPO, size, tmp], MAKE_CHECKPOINT);
    if (made.code !== 0) throw new Error(`making the ${size} checkpoint failed (exit ${made.code}):\n${made.output}`);
    timings.checkpoint = made.seconds;

    const exported = await run(PYTHON, [
      'scripts/export_model.py',
      '--checkpoint',
      path.join(tmp, 'best_model.pth'),
      '--class-mapping',
      path.join(tmp, 'class_mapping.json'),
      '--vocab',
      path.join(tmp, 'vocab.txt'),
      '--out',
      path.join(tmp, 'model'),
    ]);
    if (exported.code !== 0) throw new Error(`export_model.py failed (exit ${exported.code}):\n${exported.output}`);
    timings.export = exported.seconds;

    want = JSON.parse(readFileSync(path.join(tmp, 'expected.json'), 'utf8')) as Expected;
    const [b, l] = [want.shape[0], want.max_length];
    inputs = {
      image: Tensor.float32(new Float32Array(bytes(path.join(tmp, 'image.f32'))), [b, 3, 224, 224]),
      inputIds: Tensor.int64(new BigInt64Array(bytes(path.join(tmp, 'input_ids.i64'))), [b, l]),
      attentionMask: Tensor.int64(new BigInt64Array(bytes(path.join(tmp, 'attention_mask.i64'))), [b, l]),
    };
  }, SLOW);

  afterAll(async () => {
    await Promise.all(models.map((m) => m.dispose()));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    console.log(
      `${size}: ${Object.entries(timings)
        .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
        .join(', ')}`,
    );
  });

  async function load(file: string): Promise<TorchModel> {
    const start = performance.now();
    const model = await TorchModel.load(path.join(tmp, 'model', file), { device: 'cpu' });
    timings[`load ${file}`] = (performance.now() - start) / 1000;
    models.push(model);
    return model;
  }

  it('writes the model folder with model.json describing it', () => {
    const info = JSON.parse(readFileSync(path.join(tmp, 'model', 'model.json'), 'utf8'));
    expect(info.inputs.map((i: { name: string }) => i.name)).toEqual(['image', 'input_ids', 'attention_mask']);
    expect(info.num_classes).toBe(want.num_classes);
    expect(info.classes).toHaveLength(want.num_classes);
    expect(info.versions.torch).toBe(want.torch); // exported by the same torch as the eager reference
    expect(Object.keys(info.files).sort()).toEqual([
      'best_model.onnx',
      'best_model.pth',
      'class_mapping.json',
      'head.onnx',
      'head.pth',
      'text_encoder.onnx',
      'text_encoder.pth',
      'vocab.txt',
    ]);
  });

  it(
    "best_model.pth run by the library gives the eager model's logits",
    async () => {
      const model = await load('best_model.pth');
      expect(model.info.inputNames).toEqual(['image', 'input_ids', 'attention_mask']);
      const start = performance.now();
      const [logits] = await model.forward([inputs.image, inputs.inputIds, inputs.attentionMask]);
      timings['forward batch 2'] = (performance.now() - start) / 1000;
      expect(logits.shape).toEqual(want.shape);
      const diff = maxAbsDiff(logits, logitsTensor(want));
      console.log(`${size}: best_model.pth through the library vs eager: max abs difference ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
      // the two samples' logits differ by far more than the tolerance: the comparison is not of a constant
      let rows = 0;
      for (let c = 0; c < want.num_classes; c++) {
        rows = Math.max(rows, Math.abs(want.logits[c] - want.logits[want.num_classes + c]));
      }
      expect(rows).toBeGreaterThan(100 * TOLERANCE);
    },
    SLOW,
  );

  it(
    "text_encoder.pth then head.pth through the library give the eager model's logits",
    async () => {
      const text = await load('text_encoder.pth');
      const head = await load('head.pth');
      expect(text.info.inputNames).toEqual(['input_ids', 'attention_mask']);
      expect(head.info.inputNames).toEqual(['image', 'text_features']);
      const [features] = await text.forward([inputs.inputIds, inputs.attentionMask]);
      expect(features.shape).toEqual([want.shape[0], want.max_length, want.hidden_size]);
      const [logits] = await head.forward([inputs.image, features]);
      const diff = maxAbsDiff(logits, logitsTensor(want));
      console.log(`${size}: text_encoder.pth + head.pth via the library vs eager: max abs difference ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
    },
    SLOW,
  );
});
