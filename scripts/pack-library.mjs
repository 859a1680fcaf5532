#!/usr/bin/env node
// `npm run pack:library`: packs the library alone, `torchscript-node-<version>.tgz`, for projects that run
// TorchScript (or ONNX) models from Node without the food-classifier service.
//
// This repository is the service and the library together, and its package.json lists what the service needs
// (Express, multer, sharp, tokenizers, pino, ONNX Runtime, ...): a project that installed a pack of it got all
// of that, some 400 MB. So the library's package is assembled here instead, in build/library/package:
//   - the built library (dist/index.js and what it imports, dist/onnx/ and its worker), found by following the
//     imports from its two entry points, so that nothing of the service comes along;
//   - the addon's sources and build files (its install script compiles it against the LibTorch it finds);
//   - docs/library.md as its README.md, its links into the repository's other docs turned into plain text (they
//     are not in the package);
//   - a package.json made from this one: the same name, version, exports and install script, as dependencies
//     only the packages the packed code imports, and onnxruntime-node as an optional peer dependency (only the
//     `torchscript-node/onnx` entry needs it: install it beside to use that entry).
// Every import of the packed code is checked: a file that is not packed, a package that is not declared, or one
// that is not the library's (LIBRARY_PACKAGES) stops the pack with its name.
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'build', 'library');
const stage = path.join(out, 'package');

/** The library's entry points (the modules they start as worker threads are found by their startWorker calls). */
const ENTRIES = ['dist/index.js', 'dist/onnx/index.js'];
/** What the addon's install script needs to build it. */
const BUILD_FILES = ['native', 'CMakeLists.txt', 'binding.gyp', 'scripts/find-libtorch.mjs', 'scripts/install-addon.mjs'];
/** The package's README: the library's own doc, not the repository's (the service's) README. */
const README = 'docs/library.md';
/** Needed by the install script (cmake-js) and the addon's build (node-addon-api), though no JavaScript imports them. */
const BUILD_DEPENDENCIES = ['cmake-js', 'node-addon-api'];
/**
 * The only packages the library's code may import (beside Node's own modules): every other package in
 * package.json is the service's, and a library user must not install it. tsconfig.library.json keeps the
 * service's files out of the library; this keeps its packages out.
 */
const LIBRARY_PACKAGES = ['onnxruntime-node'];
/** Packages that only an optional entry imports: peers the user installs to use that entry. */
const OPTIONAL_PEERS = { 'onnxruntime-node': 'the torchscript-node/onnx entry' };

function fail(message) {
  console.error(`pack-library: ${message}`);
  process.exit(1);
}

/**
 * The specifiers a built module imports: static imports and re-exports, import('...') with a literal, and the
 * modules it starts as worker threads (src/worker-thread.ts's startWorker('./name', import.meta.url)).
 */
function importsOf(file) {
  const code = readFileSync(file, 'utf8');
  const found = new Set();
  for (const m of code.matchAll(/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g)) found.add(m[1]);
  for (const m of code.matchAll(/\bimport\s*['"]([^'"]+)['"]/g)) found.add(m[1]);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.add(m[1]);
  for (const m of code.matchAll(/\bstartWorker\(\s*['"](\.[^'"]+)['"]/g)) found.add(`${m[1]}.js`);
  if (/\bnew Worker\(/.test(code) && !file.endsWith('worker-thread.js')) {
    fail(`${path.relative(root, file)} starts a worker with new Worker(): use startWorker(), which this script follows`);
  }
  return [...found];
}

/** The package a bare specifier names: 'sharp', '@scope/name'. */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every module reachable from the entries, and the packages they import. */
function closure() {
  const files = new Set();
  const packages = new Set();
  const pending = ENTRIES.map((e) => path.join(root, e));
  while (pending.length > 0) {
    const file = pending.pop();
    if (files.has(file)) continue;
    if (!existsSync(file)) fail(`${path.relative(root, file)} is missing: run \`npm run build:ts\` first`);
    files.add(file);
    for (const specifier of importsOf(file)) {
      if (specifier.startsWith('.')) pending.push(path.resolve(path.dirname(file), specifier));
      else if (specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
      else packages.add(packageName(specifier));
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

function manifest(rootManifest, packages) {
  const range = (name) => rootManifest.dependencies?.[name] ?? fail(`${name} is imported but not in package.json's dependencies`);
  const dependencies = {};
  const peerDependencies = {};
  const peerDependenciesMeta = {};
  for (const name of [...new Set([...packages, ...BUILD_DEPENDENCIES])].sort()) {
    if (name in OPTIONAL_PEERS) {
      peerDependencies[name] = range(name);
      peerDependenciesMeta[name] = { optional: true };
    } else {
      dependencies[name] = range(name);
    }
  }
  const keep = ['name', 'version', 'description', 'license', 'type', 'main', 'types', 'exports', 'engines', 'binary', 'repository', 'keywords'];
  const out = Object.fromEntries(keep.filter((k) => k in rootManifest).map((k) => [k, rootManifest[k]]));
  return {
    ...out,
    scripts: { install: rootManifest.scripts.install },
    dependencies,
    peerDependencies,
    peerDependenciesMeta,
  };
}

/**
 * The library's doc as the package's README: a relative link (to another doc of the repository, which the package
 * does not hold) becomes its text; links within the page (#anchor) and absolute ones stay.
 */
function packageReadme(markdown) {
  const parts = markdown.split(/(^```[\s\S]*?^```)/m);
  return parts.map((part, i) => (i % 2 === 1 ? part : part.replace(/(?<!!)\[([^\]]*)\]\((?![a-z][a-z0-9+.-]*:|#)[^)\s]+\)/gi, '$1'))).join('');
}

const rootManifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const { files, packages } = closure();
for (const name of packages) {
  if (!LIBRARY_PACKAGES.includes(name)) {
    fail(
      `the library imports ${name}, which is not one of its packages (${LIBRARY_PACKAGES.join(', ')}): its users would install it. Keep it in the service, or add it to LIBRARY_PACKAGES if the library needs it`,
    );
  }
}
rmSync(out, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
for (const file of files) {
  const base = file.slice(0, -'.js'.length);
  for (const companion of [file, `${base}.d.ts`]) {
    if (existsSync(companion)) cpSync(companion, path.join(stage, path.relative(root, companion)));
  }
}
for (const entry of BUILD_FILES) cpSync(path.join(root, entry), path.join(stage, entry), { recursive: true });
writeFileSync(path.join(stage, 'README.md'), packageReadme(readFileSync(path.join(root, README), 'utf8')));
const pkg = manifest(rootManifest, packages);
writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);

// Every relative import of the packed code resolves inside the package (a second look, on what was copied).
for (const file of files) {
  const packed = path.join(stage, path.relative(root, file));
  for (const specifier of importsOf(packed)) {
    if (specifier.startsWith('.') && !existsSync(path.resolve(path.dirname(packed), specifier))) {
      fail(`${path.relative(root, file)} imports ${specifier}, which is not packed`);
    }
  }
}

const packed = spawnSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: stage, encoding: 'utf8' });
if (packed.status !== 0) fail(`npm pack failed:\n${packed.stderr}`);
const [info] = JSON.parse(packed.stdout);
const tarball = path.join(out, info.filename);
const kib = (n) => `${Math.round(n / 1024)} KiB`;
console.log(
  `pack-library: ${path.relative(root, tarball)} (${kib(info.size)}, ${info.entryCount} files; ` +
    `dependencies ${Object.keys(pkg.dependencies).join(', ')}; optional peer ${Object.keys(pkg.peerDependencies).join(', ') || 'none'})`,
);
// For scripts and tests: the last line is the tarball's path.
console.log(tarball);
