// The benchmark's two non-Node runners on one small TorchScript model (a Linear and an Embedding, a float32
// and an int64 input) given as an inputs folder: the C++ floor (bench/native/floor.cc, built on demand by
// bench/build-floor.mjs; skipped when g++ is missing) and bench/torch_runner.py (Debian's Python torch, or
// TORCH_NODE_TEST_PYTHON). Each must print one JSON line with one time per timed forward and the first
// output's sum, equal between the two and to what eager PyTorch computed, within 1e-4.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = process.env.TORCH_NODE_TEST_PYTHON || '/usr/bin/python3';
const FLOOR = path.join(REPO, 'build', 'bench', 'floor');
const TOLERANCE = 1e-4;
const ITERS = 4;
const HAS_GXX = spawnSync(process.env.CXX || 'g++', ['--version']).status === 0;

// Writes into argv[1] the model model.pt, its inputs (spec.json, x.bin, ids.bin), and prints the eager
// output's sum and first values.
const MAKE_MODEL = `
import json, sys, os
import torch
folder = sys.argv[1]
torch.manual_seed(0)
class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(16, 8)
        self.embedding = torch.nn.Embedding(50, 8)
    def forward(self, x, ids):
        return torch.relu(self.linear(x)) + self.embedding(ids).mean(dim=1)
model = Small().eval()
x = torch.randn(2, 16)
ids = torch.tensor([[1, 7, 49, 0, 3], [2, 2, 30, 11, 5]], dtype=torch.long)
torch.jit.save(torch.jit.trace(model, (x, ids)), os.path.join(folder, 'model.pt'))
x.numpy().astype('<f4').tofile(os.path.join(folder, 'x.bin'))
ids.numpy().astype('<i8').tofile(os.path.join(folder, 'ids.bin'))
json.dump({'inputs': [
    {'name': 'x', 'dtype': 'float32', 'shape': [2, 16], 'file': 'x.bin'},
    {'name': 'ids', 'dtype': 'int64', 'shape': [2, 5], 'file': 'ids.bin'},
]}, open(os.path.join(folder, 'spec.json'), 'w'))
with torch.no_grad():
    out = model(x, ids).double()
print(json.dumps({'sum': out.sum().item(), 'first': out.flatten()[:8].tolist()}))
`;

interface RunnerJson {
  runner: string;
  libtorch: string;
  threads: number;
  optimized: boolean;
  onednn: boolean;
  /** The C++ floor only: whether the forwards ran on a thread of their own. */
  in_thread?: boolean;
  mkldnn: boolean;
  warmup: number;
  times_ms: number[];
  output_sum: number;
  output_first: number[];
}

let folder = '';
let expected: { sum: number; first: number[] };
const results: { cpp?: RunnerJson; python?: RunnerJson } = {};

function run(command: string, args: string[]) {
  const r = spawnSync(command, args, { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

/** Runs a runner, expects exit 0 and exactly one line on stdout, a JSON object. */
function runJson(command: string, args: string[]): RunnerJson {
  const r = run(command, args);
  expect(r.status, `${path.basename(args[0] ?? command)} failed:\n${r.stderr}`).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as RunnerJson;
}

function checkResult(result: RunnerJson, runner: string): void {
  expect(result.runner).toBe(runner);
  expect(result.libtorch).toMatch(/^\d+\.\d+/);
  expect(result.threads).toBe(1);
  expect(result.optimized).toBe(true);
  expect(result.onednn).toBe(false);
  expect(typeof result.mkldnn).toBe('boolean');
  expect(result.warmup).toBe(1);
  expect(result.times_ms).toHaveLength(ITERS);
  for (const t of result.times_ms) expect(t).toBeGreaterThan(0);
  expect(Math.abs(result.output_sum - expected.sum)).toBeLessThan(TOLERANCE);
  expect(result.output_first).toHaveLength(8);
  result.output_first.forEach((v, i) => {
    expect(Math.abs(v - expected.first[i])).toBeLessThan(TOLERANCE);
  });
}

const common = () => ['--model', path.join(folder, 'model.pt'), '--inputs', folder, '--threads', '1', '--warmup', '1', '--iters', String(ITERS)];

beforeAll(() => {
  folder = mkdtempSync(path.join(os.tmpdir(), 'bench-runners-'));
  const made = run(PYTHON, ['-c', MAKE_MODEL, folder]);
  expect(made.status, `making the model with ${PYTHON} failed:\n${made.stderr}`).toBe(0);
  expected = JSON.parse(made.stdout.trim().split('\n').pop() as string);
  // The same inputs with x.bin cut short.
  mkdirSync(path.join(folder, 'short'));
  copyFileSync(path.join(folder, 'spec.json'), path.join(folder, 'short', 'spec.json'));
  copyFileSync(path.join(folder, 'ids.bin'), path.join(folder, 'short', 'ids.bin'));
  writeFileSync(path.join(folder, 'short', 'x.bin'), Buffer.alloc(10));
});

afterAll(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
});

describe.skipIf(!HAS_GXX)('the C++ floor', () => {
  // The first build compiles against LibTorch's headers (30-60 s); later ones find it up to date.
  beforeAll(() => {
    const built = spawnSync(process.execPath, ['bench/build-floor.mjs'], { cwd: REPO, encoding: 'utf8', timeout: 300_000 });
    expect(built.status, `bench/build-floor.mjs failed:\n${built.stdout}${built.stderr}`).toBe(0);
    expect(built.stdout).toMatch(/^build-floor: /);
  }, 300_000);

  it('prints one JSON line with the times and the output that PyTorch computes', () => {
    results.cpp = runJson(FLOOR, common());
    checkResult(results.cpp, 'cpp');
  });

  it('gives the same output without optimisation', () => {
    const result = runJson(FLOOR, [...common(), '--no-optimize']);
    expect(result.optimized).toBe(false);
    expect(Math.abs(result.output_sum - expected.sum)).toBeLessThan(TOLERANCE);
  });

  it('--in-thread (inputs, load and forwards on a thread of their own, as the addon runs them): the same output and errors', () => {
    const result = runJson(FLOOR, [...common(), '--in-thread']);
    expect(result.in_thread).toBe(true);
    expect(Math.abs(result.output_sum - expected.sum)).toBeLessThan(TOLERANCE);
    const r = run(FLOOR, ['--model', path.join(folder, 'model.pt'), '--inputs', path.join(folder, 'short'), '--in-thread']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('x.bin holds 10 bytes, but x (float32, 32 elements) needs 128');
  });

  it('fails with a message on stderr when the inputs folder has no spec.json, or an input file is short', () => {
    const model = path.join(folder, 'model.pt');
    let r = run(FLOOR, ['--model', model, '--inputs', path.join(folder, 'nowhere')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`cannot read ${path.join(folder, 'nowhere', 'spec.json')}`);
    r = run(FLOOR, ['--model', model, '--inputs', path.join(folder, 'short')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('x.bin holds 10 bytes, but x (float32, 32 elements) needs 128');
  });
});

describe('the Python torch runner', () => {
  it('prints one JSON line with the times and the output that PyTorch computes', () => {
    results.python = runJson(PYTHON, ['bench/torch_runner.py', ...common()]);
    checkResult(results.python, 'python');
  });

  it('fails with a message on stderr when an input file is short', () => {
    const r = run(PYTHON, ['bench/torch_runner.py', '--model', path.join(folder, 'model.pt'), '--inputs', path.join(folder, 'short')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('x.bin holds 10 bytes, but x (float32, 32 elements) needs 128');
  });
});

describe.skipIf(!HAS_GXX)('the two runners', () => {
  it('agree on the output', ({ skip }) => {
    const { cpp, python } = results;
    if (!cpp || !python) return skip('a runner above failed');
    expect(Math.abs(cpp.output_sum - python.output_sum)).toBeLessThan(TOLERANCE);
    cpp.output_first.forEach((v, i) => {
      expect(Math.abs(v - python.output_first[i])).toBeLessThan(TOLERANCE);
    });
  });
});
