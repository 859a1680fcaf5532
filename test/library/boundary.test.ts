// The library cannot import the service (issue 19): tsconfig.library.json is a composite TypeScript project that
// lists the library's files (tensors, validation, the model contract, both backends), and such a project refuses
// to compile a file of its that imports a file it does not list (TS6307). `npm run build:ts` (which
// scripts/setup.sh runs before every start and test) and the Dockerfile check it before they build.
//
// Shown here on a probe compiled as one more file of the library: importing a library module compiles; importing
// the service's or the classifier's fails, naming the file.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { REPO } from '../helpers/server.js';

const TSC = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const LIBRARY_PROJECT = path.join(REPO, 'tsconfig.library.json');
const dir = mkdtempSync(path.join(os.tmpdir(), 'library-boundary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tsc(project: string): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [TSC, '-p', project, '--noEmit'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

let libraryFiles: string[] | undefined;
/** The library project's files, absolute (tsc --showConfig, asked once). */
function listLibraryFiles(): string[] {
  libraryFiles ??= (
    JSON.parse(spawnSync(process.execPath, [TSC, '-p', LIBRARY_PROJECT, '--showConfig'], { cwd: REPO, encoding: 'utf8' }).stdout).files as string[]
  ).map((f) => path.resolve(REPO, f));
  return libraryFiles;
}

/** The library's project with one more file, `probe.ts`, which imports `target` (a path under src/). */
function probe(name: string, target: string): string {
  const probeDir = path.join(dir, name);
  const specifier = path.relative(probeDir, path.join(REPO, 'src', target)).replace(/\.ts$/, '.js');
  const config = {
    extends: LIBRARY_PROJECT,
    // The probe lives outside the repository: a root above both, and the repository's types, so that the only
    // error left is the one being shown.
    compilerOptions: { rootDir: '/', typeRoots: [path.join(REPO, 'node_modules', '@types')], tsBuildInfoFile: path.join(probeDir, 'tsbuildinfo') },
    files: [...listLibraryFiles(), path.join(probeDir, 'probe.ts')],
  };
  mkdirSync(probeDir, { recursive: true });
  writeFileSync(path.join(probeDir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(path.join(probeDir, 'probe.ts'), `import * as target from '${specifier}';\nexport const probe = target;\n`);
  const project = path.join(probeDir, 'tsconfig.json');
  writeFileSync(project, JSON.stringify(config, null, 2));
  return project;
}

describe('the library boundary (tsconfig.library.json)', () => {
  it('the build checks it: build:ts (which scripts/setup.sh runs) and lint compile the library alone first', () => {
    const scripts = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts;
    expect(scripts['build:ts']).toMatch(/^tsc -p tsconfig\.library\.json --noEmit && /);
    expect(readFileSync(path.join(REPO, 'scripts', 'setup.sh'), 'utf8')).toMatch(/^npm run --silent build:ts$/m);
    expect(readFileSync(path.join(REPO, 'scripts', 'lint.mjs'), 'utf8')).toContain("'-p', 'tsconfig.library.json'");
  });

  it('the library as it is compiles alone', () => {
    const r = tsc(LIBRARY_PROJECT);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('a library file may import the library', () => {
    const r = tsc(probe('allowed', 'torch/tensor.ts'));
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it.each([
    ['the service', 'server/config.ts'],
    ['the classifier', 'classifier/tokenizer.ts'],
  ])('a library file that imports %s fails to compile, naming the file', (_what, target) => {
    const r = tsc(probe(target.split('/')[0] as string, target));
    expect(r.status).not.toBe(0);
    expect(new Set(r.output.match(/error TS\d+/g)), `only TS6307 errors: ${r.output}`).toEqual(new Set(['error TS6307']));
    expect(r.output).toContain(`src/${target}' is not listed within the file list of project`);
  });
});
