// The workshop's preprocessing as torchvision and PIL compute it (test/classifier/torchvision_preprocess.py),
// for tests that compare with it: preprocessImage's parity test, and the top-1 agreement test of the
// classifier. And where the photos for such tests are (../shared/data, absent from a user's fresh clone).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SHARED_DATA } from '../../scripts/lib/shared-data.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = path.join(REPO, 'test', 'classifier', 'torchvision_preprocess.py');
/** Debian's torch and torchvision are installed for the system Python (as in test/global-setup.ts). */
const PYTHON = process.env.TORCH_NODE_TEST_PYTHON || '/usr/bin/python3';

export { SHARED_DATA };

/** The sample photos (5 large JPEGs) and the Food-101 validation photos (75), sorted; [] without ../shared/data. */
export function sharedPhotos(): { samples: string[]; val: string[] } {
  const list = (dir: string): string[] =>
    existsSync(dir)
      ? readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() ? list(path.join(dir, e.name)) : /\.jpe?g$/i.test(e.name) ? [path.join(dir, e.name)] : [],
        )
      : [];
  return {
    samples: list(path.join(SHARED_DATA, 'samples')).sort(),
    val: list(path.join(SHARED_DATA, 'food', 'val')).sort(),
  };
}

/** What torchvision made of one file: the tensor [3, crop, crop] in CHW order, or PIL's error. */
export type TorchvisionResult = { file: string; mode: string; size: [number, number]; tensor: Float32Array } | { file: string; error: string };

/**
 * Runs a Python script of the tests (`[script, ...args]`) with the Python that has Debian's torch and
 * torchvision, feeding it `stdin`; resolves to its stdout, or rejects saying what failed and what it needs.
 */
export async function runTorchPython(args: readonly string[], stdin = ''): Promise<string> {
  const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) {
    throw new Error(
      `${PYTHON} ${path.relative(REPO, args[0])} failed (exit ${code}): ` +
        `${stderr.trim().split('\n').slice(-3).join(' | ')}. It needs torch, torchvision and PIL: run ` +
        'scripts/setup.sh, or point TORCH_NODE_TEST_PYTHON at a Python that has them.',
    );
  }
  return stdout;
}

/**
 * Runs the workshop's transform (Image.open(f).convert('RGB'), Resize, CenterCrop, ToTensor, Normalize) on
 * each file, in one Python process (about 2 s to start, for torch).
 */
export async function torchvisionPreprocess(files: readonly string[], options: { resize?: number; crop?: number } = {}): Promise<TorchvisionResult[]> {
  const out = mkdtempSync(path.join(os.tmpdir(), 'torchvision-preprocess-'));
  try {
    const args = [SCRIPT, out, '--resize', String(options.resize ?? 256), '--crop', String(options.crop ?? 224)];
    const stdout = await runTorchPython(args, files.map((f) => `${f}\n`).join(''));
    const lines = stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return files.map((file, index) => {
      const line = lines.find((l) => l.index === index);
      if (!line) throw new Error(`torchvision_preprocess.py printed nothing for ${file}`);
      if (typeof line.error === 'string') return { file, error: line.error };
      const bytes = readFileSync(path.join(out, `${index}.f32`));
      const tensor = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      return { file, mode: line.mode as string, size: line.size as [number, number], tensor };
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The mean and the largest absolute difference between two tensors of the same length. */
export function absDiff(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum += d;
    if (d > max || Number.isNaN(d)) max = d;
  }
  return { mean: sum / a.length, max };
}
