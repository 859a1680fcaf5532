#!/usr/bin/env node
// Builds the addon with node-gyp from binding.gyp into build/Release/torch_node.node (cmake-js builds
// into build/cmake/). `configure` + `build` rather than `rebuild`, which would delete build/ and with
// it the cmake-js build. The Node headers come from this Node's own prefix (--nodedir), so nothing is
// downloaded.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
const nodedir = path.resolve(path.dirname(process.execPath), '..');
if (!existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) {
  console.error(`build-gyp: no Node headers in ${nodedir}/include/node (install the nodejs headers package)`);
  process.exit(1);
}
// Configure again when the LibTorch that find-libtorch.mjs picks has changed (LIBTORCH_DIR, TORCH_PYTHON).
const found = spawnSync(process.execPath, ['scripts/find-libtorch.mjs', '--json'], { encoding: 'utf8' });
if (found.status !== 0) {
  process.stderr.write(found.stderr);
  process.exit(1);
}
const stamp = 'build/gyp-libtorch.json';
const configured = existsSync('build/Makefile') && existsSync(stamp) && readFileSync(stamp, 'utf8') === found.stdout;
const jobs = ['--jobs', 'max'];
for (const step of configured ? ['build'] : ['configure', 'build']) {
  const args = [nodeGyp, step, `--nodedir=${nodedir}`, ...(step === 'build' ? jobs : [])];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
writeFileSync(stamp, found.stdout);
console.log('build-gyp: build/Release/torch_node.node');
