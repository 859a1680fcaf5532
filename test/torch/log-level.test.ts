// LibTorch's warnings: by default each distinct one is written once per process (as Python shows it once), with
// the prefix `torchscript-node: LibTorch warning:`; TORCH_NODE_LOG_LEVEL (or setLogLevel) asks for every one or
// none. The `warns` fixture makes LibTorch warn (Resize.cpp) on every forward. Each case runs in a child process,
// whose stderr is read once it has exited.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { modelPath } from '../helpers/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'log-level-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FORWARDS = 20;
const script = path.join(dir, 'warns.mts');
writeFileSync(
  script,
  `import { Tensor, TorchModel, setLogLevel } from ${JSON.stringify(pathToFileURL(path.join(root, 'src', 'index.ts')).href)};
  const [level] = process.argv.slice(2);
  if (level) setLogLevel(level);
  // Two models, one on a thread of its own and one on the shared thread: each distinct warning is still shown once.
  const models = await Promise.all([
    TorchModel.load(${JSON.stringify(modelPath('warns'))}, { threads: 1, inferenceThread: 'own', optimize: false }),
    TorchModel.load(${JSON.stringify(modelPath('warns'))}, { threads: 1, inferenceThread: 'shared', optimize: false }),
  ]);
  for (let i = 0; i < ${FORWARDS}; i++) {
    for (const m of models) {
      const [y] = await m.forward([Tensor.float32([1, 2, 3], [3])]);
      if (y.data[2] !== 6) throw new Error('wrong output');
    }
  }
  await Promise.all(models.map((m) => m.dispose()));
  console.log('done');
  `,
);

function run(env: Record<string, string>, level = '') {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...(level ? [level] : [])], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TORCH_NODE_LOG_LEVEL: '', ...env },
    timeout: 120_000,
  });
  const warnings = r.stderr.split('\n').filter((line) => line.startsWith('torchscript-node: LibTorch warning:'));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, warnings };
}

describe('LibTorch warnings', () => {
  it(`at the default level, a warning raised on every forward (${2 * FORWARDS} forwards, two threads) is written once`, () => {
    const r = run({});
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('done');
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/resized.*\[Resize\.cpp:\d+\]/);
    expect(r.warnings[0]).toContain('TORCH_NODE_LOG_LEVEL=info');
    // Nothing else of LibTorch's reaches stderr ([W Resize.cpp...] is how LibTorch's own handler writes it).
    expect(r.stderr).not.toMatch(/\[W /);
  });

  it('TORCH_NODE_LOG_LEVEL=info writes every warning, every time', () => {
    const r = run({ TORCH_NODE_LOG_LEVEL: 'info' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.warnings).toHaveLength(2 * FORWARDS);
  });

  it('TORCH_NODE_LOG_LEVEL=error, or setLogLevel("error"), writes none', () => {
    for (const r of [run({ TORCH_NODE_LOG_LEVEL: 'error' }), run({}, 'error')]) {
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('done');
      expect(r.warnings).toEqual([]);
      expect(r.stderr).not.toMatch(/resized/);
    }
  });

  it('a wrong TORCH_NODE_LOG_LEVEL fails the load with a message that names it; a wrong setLogLevel argument throws', () => {
    const r = run({ TORCH_NODE_LOG_LEVEL: 'loud' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("Expected 'error', 'warn' or 'info' for TORCH_NODE_LOG_LEVEL but received 'loud'");
    const bad = run({}, 'verbose');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain("Expected 'error', 'warn' or 'info' for the log level but received 'verbose' of type string");
  });
});
