#!/usr/bin/env node
// The package's install script (`npm install`, `npm rebuild torchscript-node`): builds the TorchScript addon
// with cmake-js (CMakeLists.txt) into build/cmake, against the LibTorch that scripts/find-libtorch.mjs finds.
//
// What it needs is checked first: LibTorch, cmake and a C++ compiler. Where one is missing:
//   - in an installed package the install succeeds without the addon, and says so in ONE line: what is missing
//     and how to get it (then `npm rebuild torchscript-node`). `torchscript-node/onnx` needs no addon; the
//     TorchScript entry's TorchModel.load then rejects with ERR_ADDON_NOT_BUILT and the same advice, read from
//     build/addon-status.json, which this script writes;
//   - in this repository's checkout (scripts/setup.sh is there) it fails, with the same line: the service
//     and the tests need the addon, and scripts/setup.sh installs LibTorch;
//   - so it does where LIBTORCH_DIR or TORCH_PYTHON is set but names no LibTorch: that LibTorch was asked for.
// A CXX the user set is not checked beforehand (it may carry arguments: "ccache g++"): the build tells.
// With everything there, a build that fails fails the install (exit 1), loudly: the compiler's last lines
// and the path of the full log. Whoever has LibTorch wants the addon; an install that ended well with a broken
// build would only fail later, further from its cause. (`npm install --ignore-scripts` skips the build.)
//
// npm (7 and later) shows nothing a dependency's install script prints when it succeeds, unless run with
// --foreground-scripts: the line also goes to the terminal (/dev/tty), where there is one, in that case only.
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { findLibTorch, installAdvice, IN_CHECKOUT, LibTorchNotFound } from './find-libtorch.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build', 'cmake');
/** Read by src/torch/binding.ts when the addon is not there: why, and what to do. */
const statusFile = path.join(root, 'build', 'addon-status.json');
const NAME = 'torchscript-node';

/** One line for the user, from a script that succeeds: on stderr, and on the terminal where npm would hide stderr. */
function say(line) {
  process.stderr.write(`${line}\n`);
  const underNpm = (process.env.npm_config_user_agent ?? '').startsWith('npm/');
  if (!underNpm || process.env.npm_config_foreground_scripts === 'true' || process.stderr.isTTY) return;
  let tty;
  try {
    tty = openSync('/dev/tty', 'w');
    // \r and erase-line: npm's spinner may be on the current line.
    writeSync(tty, `\r\x1b[2K${line}\n`);
  } catch {
    // no terminal (CI, a pipe): npm shows the line with --foreground-scripts, or in its log on failure
  } finally {
    if (tty !== undefined) closeSync(tty);
  }
}

function runs(command, args = ['--version']) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** What the build needs and is not there: 'LibTorch', 'cmake', 'a C++ compiler'; and the search's own words. */
function prerequisites() {
  const missing = [];
  let libtorch;
  let why = '';
  try {
    libtorch = findLibTorch();
  } catch (err) {
    if (!(err instanceof LibTorchNotFound)) throw err;
    missing.push('LibTorch');
    why = err.message.replace(/\.$/, '');
  }
  if (!runs('cmake')) missing.push('cmake');
  // CMake takes $CXX (which may carry arguments: "ccache g++"), else the first of c++, g++, clang++ it finds.
  // A CXX the user set is theirs to get right: the build says so, loudly, if it is wrong.
  if (!process.env.CXX && !['c++', 'g++', 'clang++'].some((c) => runs(c))) missing.push('a C++ compiler');
  return { missing, libtorch, why };
}

function list(items) {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

rmSync(statusFile, { force: true });
const { missing, libtorch, why } = prerequisites();

if (missing.length > 0) {
  const tools = missing.filter((m) => m !== 'LibTorch');
  // The search's own reason when it names something (LIBTORCH_DIR=... holds no LibTorch); else what is missing.
  const named = why && why !== 'LibTorch not found';
  const what = named ? [why, tools.length ? `${list(tools)} not found` : ''].filter(Boolean).join('; ') : `${list(missing)} not found`;
  const advice = installAdvice(missing);
  // LIBTORCH_DIR or TORCH_PYTHON set: the user asked for the addon, built against that LibTorch. Not finding it
  // is their mistake to see (a typo), not a reason to install without the addon: the install fails.
  const asked = ['LIBTORCH_DIR', 'TORCH_PYTHON'].filter((name) => process.env[name]);
  if (IN_CHECKOUT || (missing.includes('LibTorch') && asked.length > 0)) {
    // A failing script's output npm shows itself.
    process.stderr.write(`${NAME}: cannot build the addon: ${what}. To get it: ${advice}.\n`);
    process.exit(1);
  }
  mkdirSync(path.dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ built: false, missing, reason: what, advice }, null, 2)}\n`);
  say(`${NAME}: ${what}, so the TorchScript addon was not built (${NAME}/onnx works without it). To use TorchModel: ${advice}.`);
  process.exit(0);
}

// cmake-js writes some 85 lines for a good build: kept in a log, shown (its end) only when the build fails.
// Beside build/cmake, not in it: cmake-js may clear that folder as it configures.
mkdirSync(path.dirname(buildDir), { recursive: true });
const log = path.join(root, 'build', 'addon-build.log');
const cmakeJs = createRequire(path.join(root, 'package.json')).resolve('cmake-js/bin/cmake-js');
const started = Date.now();
// Both streams into one file, in the order they were written.
const logFd = openSync(log, 'w');
const build = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', path.relative(root, buildDir)], { cwd: root, stdio: ['ignore', logFd, logFd] });
closeSync(logFd);
const output = `${readFileSync(log, 'utf8')}${build.error ? `\n${build.error.message}\n` : ''}`;
const against = `LibTorch ${libtorch.version} (${libtorch.cuda ? 'CUDA' : 'CPU'}) from ${libtorch.source}`;

if (build.status === 0) {
  const seconds = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`${NAME}: built the addon against ${against} in ${seconds} s (log: ${path.relative(root, log)})\n`);
  process.exit(0);
}

// npm removes a package whose install failed, and its build folder with it: the log is kept in the temp folder.
const kept = path.join(os.tmpdir(), `${NAME}-build-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
let logPath = log;
try {
  copyFileSync(log, kept);
  logPath = kept;
} catch {
  // the log stays in build/
}
const tail = output.trimEnd().split('\n').slice(-40).join('\n');
process.stderr.write(`${tail}\n\n`);
const rebuild = IN_CHECKOUT ? 'npm run build:addon' : `npm rebuild ${NAME}`;
process.stderr.write(
  `${NAME}: building the addon against ${against} failed (exit ${build.status ?? build.signal}; the last lines above, the whole log in ${logPath}). ` +
    `Fix what it names and run \`${rebuild}\`` +
    (IN_CHECKOUT ? '.\n' : `; \`npm install --ignore-scripts\` installs without the addon (${NAME}/onnx needs none).\n`),
);
process.exit(1);
