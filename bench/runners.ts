// The runners of a latency measurement, each a process of its own that times forwards of a model on an inputs
// folder and prints one JSON line: the C++ floor, the addon from Node and Python torch for every stack, and
// onnxruntime-node in its worker thread and on the main thread.
import { spawn } from 'node:child_process';
import path from 'node:path';

import type { Schedule } from './models.js';
import type { Stack } from './stacks.js';

export const TSX = ['--import', 'tsx'];

/** The JSON line a runner prints. */
export interface RunnerOutput {
  runner: string;
  times_ms: number[];
  output_sum: number;
  libtorch?: string;
  onnxruntime?: string;
  eventloop_delay_ms?: { p50: number; p99: number; max: number };
}

/** A runner's forwards: how many, and extra arguments (an option of the floor). */
export type RunnerForwards = Pick<Schedule, 'iters' | 'warmup'> & { extra?: string[] };

export interface Runner {
  /** e.g. "addon from Node, LibTorch 1.13 (Debian)" */
  name: string;
  kind: 'cpp' | 'addon' | 'onnx' | 'onnx-main' | 'python';
  stack: string;
  command(model: string, inputs: string, threads: number, forwards: RunnerForwards): [string, string[], NodeJS.ProcessEnv];
}

/** The arguments every runner takes (bench/native/floor.cc, bench/latency-node.ts, bench/torch_runner.py). */
export function runnerArgs(file: string, inputs: string, threads: number, o: RunnerForwards): string[] {
  return ['--model', file, '--inputs', inputs, '--threads', String(threads), '--warmup', String(o.warmup), '--iters', String(o.iters), ...(o.extra ?? [])];
}

export function runnersFor(stacks: readonly Stack[]): Runner[] {
  const runners: Runner[] = [];
  const torchScript = (dir: string) => path.join(dir, 'best_model.pth');
  const onnx = (dir: string) => path.join(dir, 'best_model.onnx');
  for (const s of stacks) {
    runners.push({
      name: `C++ floor, ${s.label}`,
      kind: 'cpp',
      stack: s.key,
      command: (dir, inputs, threads, o) => [s.floor, runnerArgs(torchScript(dir), inputs, threads, o), {}],
    });
    runners.push({
      name: `addon from Node, ${s.label}`,
      kind: 'addon',
      stack: s.key,
      command: (dir, inputs, threads, o) => [
        process.execPath,
        [...TSX, 'bench/latency-node.ts', '--backend', 'torch', ...runnerArgs(torchScript(dir), inputs, threads, o)],
        { TORCH_NODE_ADDON: s.addon },
      ],
    });
    runners.push({
      name: `Python torch, ${s.label.replace('LibTorch', 'torch')}`,
      kind: 'python',
      stack: s.key,
      command: (dir, inputs, threads, o) => [s.python, ['bench/torch_runner.py', ...runnerArgs(torchScript(dir), inputs, threads, o)], {}],
    });
  }
  runners.push({
    name: 'onnxruntime-node (worker thread)',
    kind: 'onnx',
    stack: 'onnx',
    command: (dir, inputs, threads, o) => [
      process.execPath,
      [...TSX, 'bench/latency-node.ts', '--backend', 'onnx', ...runnerArgs(onnx(dir), inputs, threads, o)],
      {},
    ],
  });
  runners.push({
    name: 'onnxruntime-node (main thread)',
    kind: 'onnx-main',
    stack: 'onnx',
    command: (dir, inputs, threads, o) => [
      process.execPath,
      [...TSX, 'bench/latency-node.ts', '--backend', 'onnx-main', ...runnerArgs(onnx(dir), inputs, threads, o)],
      {},
    ],
  });
  return runners;
}

/**
 * The environment every measurement runs in: what the caller set (OPENBLAS_CORETYPE kept), OpenMP and MKL
 * pinned to the measurement's threads. OpenBLAS is not pinned: Debian's is the OpenMP build, which follows
 * OMP_NUM_THREADS as LibTorch does (as in production).
 */
export function measurementEnv(threads: number, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, ...threadsEnv(threads), ...extra };
}

/** OpenMP's and MKL's thread counts. */
export function threadsEnv(threads: number): { OMP_NUM_THREADS: string; MKL_NUM_THREADS: string } {
  return { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
}

/** Runs a runner in `cwd` (the repository) and resolves with its last line, parsed. */
export function measure(cwd: string, command: string, argv: string[], env: NodeJS.ProcessEnv): Promise<RunnerOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.once('error', reject);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${path.basename(command)} ${argv.slice(0, 4).join(' ')} ... exited with ${code}:\n${stderr.slice(-2000)}`));
      try {
        resolve(JSON.parse(last) as RunnerOutput);
      } catch {
        reject(new Error(`${command}: no JSON line in its output:\n${stdout.slice(-1000)}\n${stderr.slice(-1000)}`));
      }
    });
  });
}
