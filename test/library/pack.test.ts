// The library installs alone: `npm run pack:library`'s package, installed into an empty project with npm as a
// user would (its install script compiles the addon against the system's LibTorch), brings the addon and the
// TypeScript library and none of the service's dependencies; the README's library example runs there; the ONNX
// entry asks for onnxruntime-node, and works once it is installed beside. Packages come from npm's cache when
// they are there (the repository's own `npm ci` put them there).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEFAULT_MODEL_DIR, REPO } from '../helpers/server.js';

/** What the service needs and a library user must not get. */
const SERVICE_ONLY = ['express', 'multer', 'sharp', 'tokenizers', 'pino', 'pino-http', 'swagger-ui-dist', 'helmet', 'ioredis', 'prom-client', 'lru-cache'];

/** The consumer's environment: this repository's own addon (TORCH_NODE_ADDON, set by npm test) left out. */
function consumerEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { TORCH_NODE_ADDON: _ours, ...rest } = process.env;
  return { ...rest, ...env };
}

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: consumerEnv(env), timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Installed package names, scoped ones included. */
function installed(project: string): string[] {
  const modules = path.join(project, 'node_modules');
  return readdirSync(modules).flatMap((name) =>
    name.startsWith('@') ? readdirSync(path.join(modules, name)).map((sub) => `${name}/${sub}`) : name.startsWith('.') ? [] : [name],
  );
}

function sizeMb(dir: string): number {
  return Number(run('du', ['-sk', dir], dir).split('\t')[0]) / 1024;
}

let project: string;
let tarball: string;

const BUILT = existsSync(path.join(REPO, 'dist', 'index.js'));

beforeAll(() => {
  if (!BUILT) return;
  tarball = run(process.execPath, ['scripts/pack-library.mjs'], REPO).trim().split('\n').at(-1)!;
  project = mkdtempSync(path.join(os.tmpdir(), 'library-consumer-'));
  // npm 11 runs a dependency's install script only when the project allows it (allowScripts; older npm runs
  // them all): the library's compiles the addon; onnxruntime-node's, for the ONNX test below.
  const allowScripts = { [`file:${tarball}`]: true, 'torchscript-node': true, 'onnxruntime-node': true };
  writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'module', allowScripts })}\n`);
  run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], project);
}, 900_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe.skipIf(!BUILT)('the packed library, installed into an empty project (packs dist/: skipped until `npm run build:ts` made it)', () => {
  it('brings the addon (compiled at install) and the library, and none of the service', () => {
    const names = installed(project);
    expect(names).toContain('torchscript-node');
    for (const name of [...SERVICE_ONLY, 'onnxruntime-node']) expect(names, `${name} must not be installed`).not.toContain(name);
    const lib = path.join(project, 'node_modules', 'torchscript-node');
    expect(existsSync(path.join(lib, 'build', 'cmake', 'Release', 'torch_node.node'))).toBe(true);
    expect(existsSync(path.join(lib, 'dist', 'server'))).toBe(false);
    expect(existsSync(path.join(lib, 'dist', 'classifier'))).toBe(false);
    console.log(`[pack] ${path.basename(tarball)}: node_modules ${sizeMb(project).toFixed(1)} MB, ${names.length} packages`);
  });

  it('has docs/library.md as its README, with the example as examples/library.mjs has it and no link out of the package', () => {
    const readme = readFileSync(path.join(project, 'node_modules', 'torchscript-node', 'README.md'), 'utf8');
    expect(readme).toMatch(/^# torchscript-node: /);
    const block = /<!-- example:library -->\n```js\n([\s\S]*?)```/.exec(readme);
    expect(block?.[1]).toBe(readFileSync(path.join(REPO, 'examples', 'library.mjs'), 'utf8'));
    for (const heading of ['## Install', '## Errors', '## Threads and devices', '## ONNX Runtime', '## Compared with onnxruntime-node alone']) {
      expect(readme).toContain(`\n${heading}\n`);
    }
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    expect(
      links.filter((l) => !l.startsWith('#') && !/^[a-z]+:/.test(l)),
      'relative links out of the package',
    ).toEqual([]);
  });

  it("runs the README's library example (examples/library.mjs)", () => {
    copyFileSync(path.join(REPO, 'examples', 'library.mjs'), path.join(project, 'library.mjs'));
    const out = run(process.execPath, ['library.mjs'], project);
    expect(out).toContain('forward(Tensor input) -> Tensor');
    expect(out).toMatch(/float32 \[ 1, 2 \] Float32Array\(2\)/);
    expect(out).toContain(path.join(project, 'node_modules', 'torchscript-node', 'build', 'cmake', 'Release', 'torch_node.node'));
  });

  it('the ONNX entry names onnxruntime-node when it is missing, and runs a model once it is installed beside', () => {
    const script = `
      import { OnnxModel } from 'torchscript-node/onnx';
      const model = await OnnxModel.load(${JSON.stringify(path.join(DEFAULT_MODEL_DIR, 'head.onnx'))}, { threads: 1 });
      console.log(JSON.stringify(model.info.inputNames));
      await model.dispose();
    `;
    const missing = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, encoding: 'utf8', env: consumerEnv() });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("Cannot find package 'onnxruntime-node'");
    // The CUDA download of onnxruntime-node's install script is skipped, as in the Dockerfile: CPU only.
    run('npm', ['install', 'onnxruntime-node', '--prefer-offline', '--no-audit', '--no-fund'], project, {
      ONNXRUNTIME_NODE_INSTALL: 'skip',
    });
    const out = run(process.execPath, ['--input-type=module', '-e', script], project);
    expect(JSON.parse(out.trim())).toEqual(expect.arrayContaining(['image']));
  });
});
