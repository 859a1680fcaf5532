#!/usr/bin/env node
// `npm test` (after scripts/setup.sh --tests, its pretest): the static checks (scripts/lint.mjs: Biome,
// tsc --noEmit over all the TypeScript, ruff, clang-format, shellcheck), the model tooling's Python tests
// (pytest, test/python), the whole TypeScript suite against the cmake-js build of the addon, then the addon's
// and library's tests again against the node-gyp build of the same sources, so both builds are tested on
// every run.
// Extra arguments go to vitest alone (e.g. `npm test -- test/torch/model.load.test.ts`): the static checks
// still run first (about 10 s), then only those tests, against the cmake-js build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const extra = process.argv.slice(2);

function run(title, command, args, env = {}) {
  console.log(`\n=== ${title} ===`);
  const r = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`\n${title}: failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

const vitest = path.resolve('node_modules/vitest/vitest.mjs');
run('lint (Biome, tsc --noEmit, ruff, clang-format, shellcheck)', process.execPath, ['scripts/lint.mjs']);
if (extra.length === 0 && existsSync('test/python')) {
  run('model tooling tests (pytest)', '.venv/bin/python', ['-m', 'pytest', 'test/python', '-q', '-rs']);
}
run('tests, cmake-js build', process.execPath, [vitest, 'run', ...extra], {
  TORCH_NODE_ADDON: path.resolve('build/cmake/Release/torch_node.node'),
});
if (extra.length === 0) {
  run('node-gyp build', process.execPath, ['scripts/build-gyp.mjs']);
  run('addon and library tests, node-gyp build', process.execPath, [vitest, 'run', 'test/torch'], {
    TORCH_NODE_ADDON: path.resolve('build/Release/torch_node.node'),
  });
}
console.log(
  extra.length === 0
    ? '\nAll test runs passed (lint and types; pytest; vitest with the cmake-js and the node-gyp builds).'
    : '\nLint and types passed, and the tests named (vitest, cmake-js build).',
);
