#!/usr/bin/env node
// `npm run lint`: every static check of the tree, and `npm test` runs it first (with or without arguments):
// - TypeScript and JavaScript with Biome (biome.json: lint rules and formatting);
// - TypeScript's types with tsc --noEmit over tsconfig.json (src, test, bench, scripts, vitest.config.ts:
//   vitest and tsx strip types without checking them, so this is the only check of test/ and bench/), and
//   over tsconfig.library.json, the library alone (docs/building.md: its boundary);
// - Python with ruff (ruff.toml: lint rules and formatting), C++ with clang-format (.clang-format);
// - shell with shellcheck: every *.sh file and every file whose first line is a sh/bash shebang (.ci/run,
//   scripts/*.sh, ...), sourced files followed (-x).
// `npm run lint -- --fix` applies every fix the tools can make on their own (Biome, ruff, clang-format).
// The tools come from the set-up, each at a pinned version (another formats differently): Biome and
// TypeScript from npm, ruff and clang-format into .venv from PyPI (scripts/requirements.txt), shellcheck
// from Debian (scripts/setup.sh --tests, which `npm test` runs first).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readSync } from 'node:fs';
import path from 'node:path';

const fix = process.argv.includes('--fix');
const unknown = process.argv.slice(2).filter((a) => a !== '--fix');
if (unknown.length > 0 || process.argv.includes('--help')) {
  console.log(
    'npm run lint [-- --fix]   Biome, tsc --noEmit, ruff, clang-format and shellcheck over the tree; --fix applies the fixes of Biome, ruff and clang-format',
  );
  process.exit(unknown.length > 0 && !process.argv.includes('--help') ? 2 : 0);
}

/** C++ sources: the addon's and the benchmark's floor, found on disk (a packed copy has no git). */
function cppFiles() {
  const found = [];
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (/\.(cc|h)$/.test(entry.name)) found.push(file);
    }
  };
  walk('native');
  walk('bench/native');
  return found.sort();
}

/** Folders that hold no source of the project's own (installed, built or generated). */
const NOT_SOURCE = new Set(['node_modules', '.venv', 'build', 'dist', '.git', '__pycache__', '.schemathesis', '.gpu']);

/** The first line of a file is a sh/bash shebang (#!/bin/sh, #!/usr/bin/env bash, ...). */
function hasShellShebang(file) {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(128);
    const n = readSync(fd, head, 0, head.length, 0);
    return /^#!\s*\S*\/(env\s+)?(ba|da)?sh(\s|$)/.test(head.subarray(0, n).toString('latin1').split('\n')[0]);
  } finally {
    closeSync(fd);
  }
}

/** Shell scripts: *.sh, and files without an extension that start with a sh/bash shebang (.ci/run). */
function shellFiles() {
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (NOT_SOURCE.has(entry.name)) continue;
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (!entry.isFile()) continue;
      else if (/\.(sh|bash)$/.test(entry.name)) found.push(file);
      else if (!entry.name.includes('.') && hasShellShebang(file)) found.push(file);
    }
  };
  walk('.');
  return found.sort();
}

/** A program on PATH (shellcheck comes from Debian), or exit saying where it comes from. */
function needCommand(command, why) {
  const r = spawnSync(command, ['--version'], { stdio: 'ignore' });
  if (r.status === 0) return command;
  console.error(`lint: ${command} is not on PATH (${why}); run \`npm run setup -- --tests\` (or \`npm test\`, which runs it) first`);
  process.exit(1);
}

function need(file, why) {
  if (existsSync(file)) return file;
  console.error(`lint: ${file} is missing (${why}); run \`npm run setup -- --tests\` (or \`npm test\`, which runs it) first`);
  process.exit(1);
}

const ruff = need('.venv/bin/ruff', 'ruff, installed into .venv from scripts/requirements.txt');
const biome = need('node_modules/@biomejs/biome/bin/biome', 'Biome, an npm devDependency');
const clangFormat = need('.venv/bin/clang-format', 'clang-format, installed into .venv from scripts/requirements.txt');
const tsc = need('node_modules/typescript/bin/tsc', 'TypeScript, an npm devDependency');
const shellcheck = fix ? null : needCommand('shellcheck', "Debian's shellcheck package, which scripts/setup.sh --tests installs");

const steps = fix
  ? [
      ['Biome', process.execPath, [biome, 'check', '--write', '.']],
      ['ruff format', ruff, ['format', '.']],
      ['ruff check', ruff, ['check', '--fix', '.']],
      ['clang-format', clangFormat, ['-i', ...cppFiles()]],
    ]
  : [
      ['Biome (TypeScript, JavaScript)', process.execPath, [biome, 'check', '--error-on-warnings', '.']],
      ['tsc --noEmit (TypeScript types: src, test, bench, scripts)', process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit']],
      ['tsc --noEmit (the library alone: it imports no file of the classifier or service)', process.execPath, [tsc, '-p', 'tsconfig.library.json', '--noEmit']],
      ['ruff check (Python)', ruff, ['check', '.']],
      ['ruff format --check (Python)', ruff, ['format', '--check', '.']],
      ['clang-format (C++)', clangFormat, ['--dry-run', '-Werror', ...cppFiles()]],
      ['shellcheck (shell)', shellcheck, ['--external-sources', ...shellFiles()]],
    ];

const failed = [];
for (const [title, command, args] of steps) {
  const r = spawnSync(command, args, { stdio: 'inherit' });
  if (r.status !== 0) failed.push(title);
}
if (failed.length > 0) {
  console.error(`\nlint: ${failed.join(', ')} found problems.${fix ? '' : ' `npm run lint -- --fix` fixes what the tools can.'}`);
  process.exit(1);
}
console.log(fix ? 'lint: fixes applied.' : 'lint: Biome, tsc, ruff, clang-format and shellcheck found nothing.');
