#!/usr/bin/env node
// Builds the benchmark's C++ floor (bench/native/*.cc + the LibTorch side of the addon, native/) with g++
// directly, against the LibTorch that scripts/find-libtorch.mjs picks (LIBTORCH_DIR, TORCH_PYTHON, else
// Debian's libtorch-dev): its include dirs, libraries, C++ standard and defines, -O2, an rpath to its lib
// dir. The floor runs on the CPU only: it links libtorch_cpu and libc10, not LibTorch's CUDA libraries.
//
//   node bench/build-floor.mjs [--out build/bench/floor]
//   TORCH_PYTHON=/opt/torch2/bin/python node bench/build-floor.mjs --out build/bench/floor-torch2
//
// It rebuilds only when the sources, this script, the LibTorch found or its libtorch_cpu changed (a stamp
// next to the output, OUT.stamp), and prints one line saying what it did. oneDNN Graph (LLGA) fusion is
// compiled in (FLOOR_WITH_ONEDNN_GRAPH=1) when libtorch_cpu exports its fuser; Debian's 1.13 does not.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { findLibTorch } from '../scripts/find-libtorch.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const floorDir = path.join(root, 'bench', 'native');
const floorFiles = (ext) =>
  readdirSync(floorDir)
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => path.join(floorDir, f));
/** The addon's LibTorch side (no N-API in it): what floor.cc runs the model with. */
const LIBTORCH_SIDE = ['script_model', 'forward_args', 'torch_log', 'runtime', 'tensor_types', 'torch_dtypes', 'torch_errors', 'torchscript_archive'];
const sources = [...floorFiles('.cc'), ...LIBTORCH_SIDE.map((name) => path.join(root, 'native', `${name}.cc`))];
const headers = [...floorFiles('.h'), ...[...LIBTORCH_SIDE, 'error'].map((name) => path.join(root, 'native', `${name}.h`))];
const inputsOfBuild = [...sources, ...headers, fileURLToPath(import.meta.url)];
const CXX = process.env.CXX || 'g++';
const LLGA_SYMBOL = '_ZN5torch3jit5fuser6onednn9fuseGraph'; // torch::jit::fuser::onednn::fuseGraph(...)

class BuildError extends Error {}

function fail(message) {
  process.stderr.write(`build-floor: ${message}\n`);
  process.exit(1);
}

/** Whether this LibTorch has the oneDNN Graph fuser: its header, and the fuser in libtorch_cpu. */
function hasOneDnnGraph(lt) {
  const header = path.join(lt.includeDirs[0], 'torch', 'csrc', 'jit', 'passes', 'onednn_graph_fuser.h');
  if (!existsSync(header)) return false;
  const nm = spawnSync('nm', ['-D', '--defined-only', path.join(lt.libDir, 'libtorch_cpu.so')], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (nm.status !== 0) {
    process.stderr.write('build-floor: nm failed, so --onednn is compiled out (install binutils)\n');
    return false;
  }
  return nm.stdout.includes(LLGA_SYMBOL);
}

function compilerAvailable() {
  const r = spawnSync(CXX, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

function run(args) {
  return new Promise((resolve) => {
    const child = spawn(CXX, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (err) => resolve({ ok: false, output: String(err.message) }));
    child.on('close', (code) => resolve({ ok: code === 0, output }));
  });
}

/** Runs the tasks, at most `limit` at once; resolves with their results in order. */
async function inParallel(tasks, limit) {
  const results = [];
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

async function main() {
  const usage = 'usage: node bench/build-floor.mjs [--out build/bench/floor]   (LIBTORCH_DIR / TORCH_PYTHON pick the LibTorch)';
  let values;
  try {
    ({ values } = parseArgs({ options: { out: { type: 'string', default: 'build/bench/floor' }, help: { type: 'boolean' } } }));
  } catch (err) {
    throw new BuildError(`${err.message}\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    return;
  }
  const out = path.resolve(root, values.out);
  const shown = path.relative(process.cwd(), out) || out;

  let lt;
  try {
    lt = findLibTorch();
  } catch (err) {
    fail(err.message);
  }
  const libtorchCpu = statSync(path.join(lt.libDir, 'libtorch_cpu.so'));
  const hash = createHash('sha256');
  for (const file of inputsOfBuild) hash.update(readFileSync(file));
  const stamp = JSON.stringify({
    sources: hash.digest('hex'),
    cxx: CXX,
    libtorch: lt,
    libtorchCpu: { size: libtorchCpu.size, mtimeMs: libtorchCpu.mtimeMs },
  });
  const stampFile = `${out}.stamp`;
  const describe = `LibTorch ${lt.version} from ${lt.source}`;
  if (existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
    console.log(`build-floor: ${shown} is up to date (${describe})`);
    return;
  }
  if (!compilerAvailable()) fail(`${CXX} not found: install g++ (or set CXX) to build the C++ floor`);

  const llga = hasOneDnnGraph(lt);
  const started = Date.now();
  mkdirSync(path.dirname(out), { recursive: true });
  const work = mkdtempSync(`${out}.build-`);
  try {
    const flags = [
      `-std=c++${lt.cxxStandard}`,
      '-O2',
      ...lt.defines.map((d) => `-D${d}`),
      `-DFLOOR_WITH_ONEDNN_GRAPH=${llga ? 1 : 0}`,
      ...lt.includeDirs.map((d) => `-I${d}`),
      `-I${path.join(root, 'native')}`,
    ];
    // The translation units in parallel, one per core: most take a while with LibTorch's headers.
    const objects = sources.map((src) => path.join(work, `${path.basename(src, '.cc')}.o`));
    const compiled = await inParallel(
      sources.map((src, i) => () => run([...flags, '-c', src, '-o', objects[i]])),
      os.availableParallelism(),
    );
    compiled.forEach((r, i) => {
      if (!r.ok) throw new BuildError(`compiling ${path.relative(root, sources[i])} failed:\n${r.output.split('\n').slice(-40).join('\n')}`);
    });
    // Only libtorch_cpu and libc10: libtorch.so of a CUDA build pulls in libtorch_cuda and the whole CUDA
    // runtime (and exports weak std:: symbols that would bind it), which the CPU-only floor never uses.
    const cpuLibraries = lt.libraries.filter((l) => l === 'torch_cpu' || l === 'c10');
    const tmp = path.join(work, 'floor');
    const linked = await run([...objects, '-o', tmp, `-L${lt.libDir}`, `-Wl,-rpath,${lt.libDir}`, ...cpuLibraries.map((l) => `-l${l}`), '-lpthread', '-ldl']);
    if (!linked.ok) throw new BuildError(`linking failed:\n${linked.output.split('\n').slice(-40).join('\n')}`);
    renameSync(tmp, out);
    writeFileSync(stampFile, stamp);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`build-floor: built ${shown} against ${describe} (C++${lt.cxxStandard}, oneDNN Graph ${llga ? 'on' : 'compiled out'}) in ${seconds} s`);
}

try {
  await main();
} catch (err) {
  if (!(err instanceof BuildError)) throw err;
  fail(err.message);
}
