#!/usr/bin/env node
// `npm run lint`: TypeScript and JavaScript with Biome (biome.json: lint rules and formatting), Python with
// ruff (ruff.toml: lint rules and formatting) and C++ with clang-format (.clang-format). `npm test` runs it
// before the tests. `npm run lint -- --fix` applies every fix the tools can make on their own.
// The tools come from the set-up, each at a pinned version (another formats differently): Biome from npm,
// ruff and clang-format into .venv from PyPI (scripts/requirements.txt).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const fix = process.argv.includes('--fix');
const unknown = process.argv.slice(2).filter((a) => a !== '--fix');
if (unknown.length > 0 || process.argv.includes('--help')) {
  console.log('npm run lint [-- --fix]   Biome, ruff and clang-format over the tree; --fix applies their fixes');
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

function need(file, why) {
  if (existsSync(file)) return file;
  console.error(`lint: ${file} is missing (${why}); run \`npm run setup\` first`);
  process.exit(1);
}

const ruff = need('.venv/bin/ruff', 'ruff, installed into .venv from scripts/requirements.txt');
const biome = need('node_modules/@biomejs/biome/bin/biome', 'Biome, an npm devDependency');
const clangFormat = need('.venv/bin/clang-format', 'clang-format, installed into .venv from scripts/requirements.txt');

const steps = fix
  ? [
      ['Biome', process.execPath, [biome, 'check', '--write', '.']],
      ['ruff format', ruff, ['format', '.']],
      ['ruff check', ruff, ['check', '--fix', '.']],
      ['clang-format', clangFormat, ['-i', ...cppFiles()]],
    ]
  : [
      ['Biome (TypeScript, JavaScript)', process.execPath, [biome, 'check', '--error-on-warnings', '.']],
      ['ruff check (Python)', ruff, ['check', '.']],
      ['ruff format --check (Python)', ruff, ['format', '--check', '.']],
      ['clang-format (C++)', clangFormat, ['--dry-run', '-Werror', ...cppFiles()]],
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
console.log(fix ? 'lint: fixes applied.' : 'lint: Biome, ruff and clang-format found nothing.');
