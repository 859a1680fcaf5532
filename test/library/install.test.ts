// Installs anywhere (issue 21): `npm run pack:library`'s package, installed into an empty project where no
// LibTorch can be found, installs (exit 0) with one line of advice on the terminal and no build output; the
// ONNX entry runs a model there; TorchModel.load rejects with ERR_ADDON_NOT_BUILT and the same advice.
//
// LibTorch is really made absent, not configured away: the install runs in a mount namespace of its own
// (`unshare --mount`, or as an unprivileged user `unshare --user --map-root-user --mount`) in which the LibTorch
// that scripts/find-libtorch.mjs finds here (Debian's libtorch-dev) is covered: an empty tmpfs over its headers
// and its CMake config, /dev/null over libtorch_cpu.so. The rest of the machine sees nothing of it. npm runs
// under `script`, in a pseudo-terminal of its own, so that what is checked is what a user at a terminal sees
// (npm 7+ shows nothing a dependency's successful install script prints on stderr: the line goes to the terminal).
// Skipped, saying why, where dist/ is not built or no mount ns can be made.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DEFAULT_MODEL_DIR, REPO } from '../helpers/server.js';

const LINE_START = 'torchscript-node: LibTorch not found, so the TorchScript addon was not built';
const ADVICE = [
  '`apt-get install libtorch-dev` (Debian/Ubuntu) then `npm rebuild torchscript-node`',
  '`pip install torch` then `TORCH_PYTHON=/path/to/that/python npm rebuild torchscript-node`',
];

/**
 * A consumer's environment: none of this repository's settings (its addon, a LibTorch it points at), nor what an
 * outer `npm test` says of its own package or would change in what npm shows; npm's cache and registry stay.
 */
function consumerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const dropped =
    /^(TORCH_NODE_ADDON|LIBTORCH_DIR|TORCH_PYTHON|npm_lifecycle_.*|npm_package_.*|npm_config_(foreground_scripts|loglevel|ignore_scripts|silent|progress))$/i;
  for (const [k, v] of Object.entries(process.env)) if (!dropped.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** The unshare command that makes a private mount namespace here (root, or an unprivileged user ns), or why none. */
function namespaceCommand(): { argv: string[] } | { why: string } {
  const tries = [
    ['unshare', '--mount', '--propagation', 'private'],
    ['unshare', '--user', '--map-root-user', '--mount', '--propagation', 'private'],
  ];
  const errors: string[] = [];
  for (const argv of tries) {
    const r = spawnSync(argv[0], [...argv.slice(1), 'mount', '-t', 'tmpfs', 'none', os.tmpdir()], { encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) return { argv };
    errors.push(`${argv.join(' ')}: ${(r.error?.message ?? r.stderr).trim().split('\n').at(-1)}`);
  }
  return { why: errors.join('; ') };
}

/** What hides this machine's LibTorch from find-libtorch.mjs (nothing where there is none). */
function hidingCommands(): string[] {
  const r = spawnSync(process.execPath, ['scripts/find-libtorch.mjs', '--json'], { cwd: REPO, encoding: 'utf8', env: consumerEnv() });
  if (r.status !== 0) return [];
  const found = JSON.parse(r.stdout) as { includeDirs: string[]; libDir: string; prefix: string };
  const q = (p: string) => `'${p.replaceAll("'", "'\\''")}'`;
  const dirs = [path.join(found.includeDirs[0], 'torch'), path.join(found.libDir, 'cmake', 'Torch'), path.join(found.prefix, 'share', 'cmake', 'Torch')];
  return [
    ...dirs.filter((d) => existsSync(d)).map((d) => `mount -t tmpfs none ${q(d)}`),
    `mount --bind /dev/null ${q(path.join(found.libDir, 'libtorch_cpu.so'))}`,
  ];
}

/** A terminal's transcript as lines of text: escape sequences and carriage returns out. */
function screenLines(transcript: string): string[] {
  return (
    transcript
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .split(/\r?\n|\r/)
      .map((l) => l.replace(/[\u2800-\u28ff]/g, '').trim())
      .filter(Boolean)
  );
}

const BUILT = existsSync(path.join(REPO, 'dist', 'index.js'));
const ns = BUILT ? namespaceCommand() : { why: 'dist/ is not built' };
const SKIP = 'why' in ns ? ns.why : '';
if (SKIP) console.warn(`[install] skipped: the install without LibTorch needs ${BUILT ? 'a private mount namespace' : '`npm run build:ts`'} (${SKIP})`);

let tarball: string;
let project: string;
let install: { status: number | null; screen: string[]; seconds: number; transcript: string };

/** An empty project that allows the library's install script (npm 11), not onnxruntime-node's (a CUDA download). */
function emptyProject(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const allowScripts = { [`file:${tarball}`]: true, 'torchscript-node': true, 'onnxruntime-node': false };
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'module', allowScripts })}\n`);
  return dir;
}

beforeAll(() => {
  if (!BUILT) return;
  tarball = spawnSync(process.execPath, ['scripts/pack-library.mjs'], { cwd: REPO, encoding: 'utf8' }).stdout.trim().split('\n').at(-1)!;
  expect(existsSync(tarball), `pack-library made ${tarball}`).toBe(true);
  if ('why' in ns) return;
  project = emptyProject('library-no-libtorch-');
  // onnxruntime-node at the version this repository uses (in npm's cache), beside, as the ONNX entry asks.
  const ort = JSON.parse(readFileSync(path.join(REPO, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version as string;
  const npm = `npm install ${tarball} onnxruntime-node@${ort} --prefer-offline --no-audit --no-fund`;
  const shell = [
    'set -e',
    ...hidingCommands(),
    // the covering worked: the search finds nothing now
    `if node ${path.join(REPO, 'scripts', 'find-libtorch.mjs')} >/dev/null 2>&1; then echo 'LibTorch still found' >&2; exit 97; fi`,
    `exec script -qec '${npm}' /dev/null`,
  ].join('\n');
  const started = Date.now();
  const r = spawnSync(ns.argv[0], [...ns.argv.slice(1), 'bash', '-c', shell], {
    cwd: project,
    encoding: 'utf8',
    env: consumerEnv({ ONNXRUNTIME_NODE_INSTALL: 'skip', LANG: 'C.UTF-8' }),
    timeout: 300_000,
  });
  const transcript = `${r.stdout}${r.stderr}`;
  install = { status: r.status, screen: screenLines(transcript), seconds: (Date.now() - started) / 1000, transcript };
  console.log(
    `[install] no LibTorch: exit ${r.status ?? r.signal} in ${install.seconds.toFixed(1)} s; what the terminal showed:\n  ${install.screen.join('\n  ')}`,
  );
}, 330_000);

afterAll(() => {
  for (const dir of [project, broken]) if (dir) rmSync(dir, { recursive: true, force: true });
});

let broken: string | undefined;

function node(script: string) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, encoding: 'utf8', env: consumerEnv(), timeout: 60_000 });
}

describe.skipIf(SKIP !== '')(`the packed library, installed where no LibTorch is found${SKIP ? ` (skipped: ${SKIP})` : ''}`, () => {
  it('installs (exit 0), showing one line: what is missing and how to get it; no build output', () => {
    expect(install.status, install.transcript).toBe(0);
    const advice = install.screen.filter((l) => l.includes('torchscript-node:'));
    expect(advice, install.transcript).toHaveLength(1);
    expect(advice[0].startsWith(LINE_START), advice[0]).toBe(true);
    expect(advice[0]).toContain('torchscript-node/onnx works without it');
    for (const command of ADVICE) expect(advice[0]).toContain(command);
    // Nothing of cmake-js, CMake or npm's failure report; npm's own summary is all else.
    expect(install.transcript).not.toMatch(/cmake-js|CMake|-- Configuring|npm (error|ERR!)|find-libtorch/);
    expect(
      install.screen.filter((l) => l !== advice[0] && !/^added \d+ packages? in /.test(l)),
      install.transcript,
    ).toEqual([]);
    const lib = path.join(project, 'node_modules', 'torchscript-node');
    expect(existsSync(path.join(lib, 'build', 'cmake', 'Release', 'torch_node.node'))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(lib, 'build', 'addon-status.json'), 'utf8'))).toMatchObject({ built: false, missing: ['LibTorch'] });
  });

  it('torchscript-node/onnx runs a model there', () => {
    const r = node(`
      import { OnnxModel, Tensor } from 'torchscript-node/onnx';
      const model = await OnnxModel.load(${JSON.stringify(path.join(DEFAULT_MODEL_DIR, 'head.onnx'))}, { threads: 1 });
      const [logits] = await model.forward([
        Tensor.float32(new Float32Array(3 * 224 * 224).fill(0.5), [1, 3, 224, 224]),
        Tensor.float32(new Float32Array(128 * 64).fill(0.1), [1, 128, 64]),
      ]);
      await model.dispose();
      console.log(JSON.stringify({ dtype: logits.dtype, shape: logits.shape, finite: Array.from(logits.data).every(Number.isFinite) }));
    `);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ dtype: 'float32', shape: [1, 3], finite: true });
  });

  it('TorchModel.load and runtimeInfo() reject with ERR_ADDON_NOT_BUILT and the same advice', () => {
    const r = node(`
      import { TorchError, TorchModel, runtimeInfo } from 'torchscript-node';
      const seen = [];
      try { await TorchModel.load(${JSON.stringify(path.join(DEFAULT_MODEL_DIR, 'head.pth'))}); seen.push('loaded'); }
      catch (e) { seen.push({ torchError: e instanceof TorchError, code: e.code, message: e.message }); }
      try { runtimeInfo(); seen.push('loaded'); }
      catch (e) { seen.push({ torchError: e instanceof TorchError, code: e.code, message: e.message }); }
      console.log(JSON.stringify(seen));
    `);
    expect(r.status, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout.trim()) as { torchError: boolean; code: string; message: string }[];
    for (const error of seen) {
      expect(error).toMatchObject({ torchError: true, code: 'ERR_ADDON_NOT_BUILT' });
      expect(error.message).toContain('LibTorch not found');
      for (const command of ADVICE) expect(error.message).toContain(command);
      // No command of this repository's checkout: an installed package has neither.
      expect(error.message).not.toMatch(/build:addon|setup\.sh/);
    }
  });
});

/** `npm install` of the packed library into `project` (plain pipes, no terminal), with `env` over the consumer's. */
function installTarball(project: string, env: Record<string, string>): { r: ReturnType<typeof spawnSync>; out: string } {
  const r = spawnSync('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: project,
    encoding: 'utf8',
    env: consumerEnv(env),
    timeout: 300_000,
  });
  return { r, out: `${r.stdout}${r.stderr}` };
}

const LIBTORCH_HERE = spawnSync(process.execPath, ['scripts/find-libtorch.mjs'], { cwd: REPO, env: consumerEnv() }).status === 0;

describe.skipIf(!BUILT || !LIBTORCH_HERE)(`a build that fails where LibTorch is found${LIBTORCH_HERE ? '' : ' (skipped: no LibTorch here)'}`, () => {
  it("fails the install, with the compiler's words and the path of the whole log", () => {
    broken = emptyProject('library-broken-build-');
    // Answers --version as g++ does (the install's check for a compiler passes), fails every compile.
    const cxx = path.join(broken, 'failing-c++');
    writeFileSync(cxx, '#!/bin/sh\nfor a in "$@"; do [ "$a" = --version ] && exec g++ --version; done\necho "failing-c++: fails on purpose" >&2\nexit 1\n', {
      mode: 0o755,
    });
    const { r, out } = installTarball(broken, { CXX: cxx });
    expect(r.status, out).not.toBe(0);
    expect(out).toContain('failing-c++: fails on purpose');
    const summary =
      /torchscript-node: building the addon against LibTorch \S+ \(\w+\) from .* failed \(exit \d+; the last lines above, the whole log in (\S+)\)/.exec(out);
    expect(summary, out).not.toBeNull();
    expect(out).toContain('`npm rebuild torchscript-node`');
    const log = summary![1];
    expect(readFileSync(log, 'utf8')).toContain('failing-c++: fails on purpose');
    rmSync(log, { force: true });
  }, 300_000);

  it('LIBTORCH_DIR naming no LibTorch fails the install (the user asked for that LibTorch), saying so', () => {
    const project = emptyProject('library-wrong-libtorch-dir-');
    const empty = path.join(project, 'no-libtorch-here');
    mkdirSync(empty);
    const { r, out } = installTarball(project, { LIBTORCH_DIR: empty });
    expect(r.status, out).not.toBe(0);
    expect(out).toContain(`LIBTORCH_DIR=${empty}`);
    rmSync(project, { recursive: true, force: true });
  }, 300_000);
});
