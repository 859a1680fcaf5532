// What can be measured here: the LibTorch builds (Debian's 1.13 always; a pip torch 2.x where installed), each
// with its addon, its C++ floor and its Python, built before the run; and the versions the results record.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { BenchPlan } from './plan.js';

export interface Stack {
  /** e.g. "LibTorch 1.13 (Debian)" */
  label: string;
  key: 'debian' | 'torch2';
  addon: string;
  floor: string;
  python: string;
}

function sh(plan: BenchPlan, command: string, argv: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(command, argv, { cwd: plan.paths.repo, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Builds the floor (and the addon) of each stack there is to measure, and lists them. */
export function buildStacks(plan: BenchPlan): Stack[] {
  const { paths, progress } = plan;
  progress("building the C++ floor against Debian's LibTorch (bench/build-floor.mjs)");
  sh(plan, process.execPath, ['bench/build-floor.mjs', '--out', paths.floor113], { LIBTORCH_DIR: '', TORCH_PYTHON: '' });
  const list: Stack[] = [{ label: 'LibTorch 1.13 (Debian)', key: 'debian', addon: paths.addon113, floor: paths.floor113, python: paths.debianPython }];
  if (!plan.torch2) return list;
  const python = paths.torch2Python;
  if (!existsSync(python)) {
    progress(`no pip torch 2.x to compare (${python}: npm run test:libtorch2 installs one, or set TORCH2_PYTHON): skipped`);
    return list;
  }
  // Incremental: seconds when nothing changed, and never an addon older than the sources.
  progress(`building the addon against ${python}'s LibTorch into build/torch2 (a few minutes the first time)`);
  sh(plan, process.execPath, ['node_modules/cmake-js/bin/cmake-js', 'compile', '--out', 'build/torch2'], { TORCH_PYTHON: python, LIBTORCH_DIR: '' });
  progress(`building the C++ floor against ${python}'s LibTorch`);
  sh(plan, process.execPath, ['bench/build-floor.mjs', '--out', paths.floor2], { TORCH_PYTHON: python, LIBTORCH_DIR: '' });
  const version = sh(plan, python, ['-c', 'import torch; print(torch.__version__.split("+")[0])']).trim();
  list.push({ label: `LibTorch ${version} (PyPI torch)`, key: 'torch2', addon: paths.addon2, floor: paths.floor2, python });
  return list;
}

/** The versions of what was measured: Node, each stack's Python torch, onnxruntime-node, autocannon, OpenBLAS. */
export function versions(plan: BenchPlan, stacks: readonly Stack[]): Record<string, string> {
  const packageVersion = (name: string) =>
    (JSON.parse(readFileSync(path.join(plan.paths.repo, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  const v: Record<string, string> = { node: process.version };
  for (const s of stacks) v[`python torch (${s.key})`] = sh(plan, s.python, ['-c', 'import torch; print(torch.__version__)']).trim();
  v.onnxruntime_node = packageVersion('onnxruntime-node');
  v.autocannon = packageVersion('autocannon');
  try {
    v.openblas = sh(plan, 'dpkg-query', ['-W', `-f=\${Version}`, 'libopenblas0-openmp']).trim();
  } catch {
    v.openblas = 'not installed';
  }
  return v;
}
