// The README and docs/*.md as a newcomer reads them, checked: each example shown is its file in examples/, word
// for word, and runs as written; every command they give (in ```sh blocks and in inline code) names an npm
// script, or a file of this repository, that exists, with options that its sources define; every relative link points at a file that exists and, with #anchor, at one of its headings; the blocks
// that `npm run bench` rewrites are there; the README stays short. The curl lines are run by
// test/server/api.test.ts; the configuration table is checked against src/server/config.ts here (defaults) and
// in test/server/config.test.ts (names).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { VARIABLES } from '../src/server/config.js';
import { anchors, codeBlocks, curlLines, type Doc, docs, inlineCode, relativeLinks, shellLines } from './helpers/docs.js';

const root = path.resolve(import.meta.dirname, '..');
const DOCS = docs();
const scripts: Record<string, string> = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts;

/** npm's own commands, which need no script of ours. */
const NPM_BUILTINS = new Set(['install', 'ci', 'rebuild', 'install-scripts', 'pack', 'exec']);

/** A built file (dist/x.js) is made from its source (src/x.ts). */
function sourceOf(file: string): string {
  return file.startsWith('dist/') ? file.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts') : file;
}

/** The files a command's options may be defined in: the file, the files it names, and its folder's files. */
function optionSources(file: string): string {
  const full = path.join(root, file);
  const text = readFileSync(full, 'utf8');
  const named = [...text.matchAll(/\b((?:bench|scripts|src)\/[\w./-]+\.(?:ts|py|mjs|sh))\b/g)].map((m) => m[1]);
  const dir = path.dirname(full);
  const siblings = readdirSync(dir)
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile() && /\.(ts|py|mjs|js|sh)$/.test(f));
  return [full, ...named.map((n) => path.join(root, n)), ...siblings]
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

/** Every --option of `args` is defined in `sources` (as --name, or as a parseArgs key 'name':). */
function expectOptions(args: string[], sources: string, where: string): void {
  for (const arg of args) {
    const m = /^--([\w-]+)/.exec(arg);
    if (!m) continue;
    const name = m[1];
    const defined = sources.includes(`--${name}`) || new RegExp(`['"]${name}['"]\\s*:|\\b${name}\\s*:\\s*\\{`).test(sources);
    expect(defined, `${where}: the option --${name} is defined nowhere in its sources`).toBe(true);
  }
}

/** The script file an npm script runs last (`... && node --import tsx bench/run.ts` -> bench/run.ts). */
function scriptFile(script: string): string | undefined {
  return [...script.matchAll(/(?:^|\s)((?:bench|scripts|src|dist)\/[\w./-]+\.(?:ts|mjs|js|sh|py))/g)].at(-1)?.[1];
}

/**
 * Checks one command line of the docs; says whether it was one of ours (npm, node, bash, python, a script path).
 * Other programs (curl, openssl, apt-get, ...) are not ours to check.
 */
function checkCommand(line: string, where: string): boolean {
  // The first command of a pipe or a chain, without the variables set before it.
  const words = line.split(/\s*(?:\||&&|;)\s*/)[0].split(/\s+/);
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0])) words.shift();
  const [program, ...args] = words;
  if (program === 'npm') {
    const [sub, ...rest] = args;
    if (sub === 'start' || sub === 'test') {
      expect(scripts[sub], `${where}: npm ${sub}`).toBeDefined();
      return true;
    }
    if (sub === 'run') {
      const [name, ...more] = rest;
      if (name.endsWith('*')) {
        // `npm run bench*`: the scripts of that name and its variants.
        expect(Object.keys(scripts).filter((s) => s.startsWith(name.slice(0, -1))).length, `${where}: no script matches ${name}`).toBeGreaterThan(1);
        return true;
      }
      expect(scripts[name], `${where}: \`npm run ${name}\` names no script of package.json`).toBeDefined();
      const file = scriptFile(scripts[name]);
      const sep = more.indexOf('--');
      if (file && sep >= 0) expectOptions(more.slice(sep + 1), optionSources(sourceOf(file)), where);
      return true;
    }
    expect(NPM_BUILTINS.has(sub), `${where}: npm ${sub} is neither a script nor one of npm's commands we expect`).toBe(true);
    return true;
  }
  let fileIndex = -1;
  if (program === 'node' || program === 'bash' || program === '.venv/bin/python' || program === 'python3') {
    fileIndex = args.findIndex((a) => !a.startsWith('-') && a !== 'tsx');
  } else if (/^(scripts|bench)\/[\w./-]+\.(sh|mjs|py)$/.test(program)) {
    args.unshift(program);
    fileIndex = 0;
  } else {
    return false;
  }
  const file = args[fileIndex];
  expect(file, `${where}: ${program} runs no file`).toBeDefined();
  expect(existsSync(path.join(root, sourceOf(file))), `${where}: ${file} does not exist`).toBe(true);
  expectOptions(args.slice(fileIndex + 1), optionSources(sourceOf(file)), where);
  return true;
}

describe('README and docs/', () => {
  it('has the docs the README links to, and a README of at most 250 lines', () => {
    const readme = DOCS.find((d) => d.file === 'README.md')!;
    expect(readme.text.split('\n').length).toBeLessThanOrEqual(250 + 1);
    const linked = new Set(relativeLinks(readme.text).map((l) => l.split('#')[0]));
    for (const d of DOCS.filter((x) => x.file.startsWith('docs/'))) expect(linked, `the README links to ${d.file}`).toContain(d.file);
  });

  it('shows each example of examples/ exactly, after <!-- example:NAME --> (in docs/library.md, the library package README)', () => {
    const examples = readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.mjs'));
    expect(examples).toEqual(expect.arrayContaining(['library.mjs', 'onnx.mjs']));
    for (const example of examples) {
      const marker = `<!-- example:${example.replace(/\.mjs$/, '')} -->`;
      const shown = DOCS.filter((d) => d.text.includes(marker));
      expect(
        shown.map((d) => d.file),
        marker,
      ).toEqual(['docs/library.md']);
      const block = new RegExp(`${marker}\\n\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(shown[0].text);
      expect(block, `a \`\`\`js block right after ${marker}`).not.toBeNull();
      expect(block![1], example).toBe(readFileSync(path.join(root, 'examples', example), 'utf8'));
    }
  });

  it('runs the library example as written', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'examples', 'library.mjs')], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out).toContain('forward(Tensor input) -> Tensor');
    expect(out).toMatch(/float32 \[ 1, 2 \] Float32Array\(2\) \[ -?\d/);
  });

  it('runs the ONNX example as written, on the demo model', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'examples', 'onnx.mjs')], { cwd: root, encoding: 'utf8' });
    expect(out).toContain("'image: float32 [batch,3,224,224]'");
    expect(out).toContain('logits float32 [ 1, 3 ]');
  });

  it('every command of a sh block is ours and checked, or a curl line (run by test/server/api.test.ts)', () => {
    let checked = 0;
    for (const d of DOCS) {
      for (const line of shellLines(d.text)) {
        if (line.startsWith('curl ')) continue;
        expect(checkCommand(line, `${d.file}: ${line}`), `${d.file}: \`${line}\` is not a command the test knows how to check`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });

  it('every command in inline code names a script or file that exists, with options it defines', () => {
    let checked = 0;
    for (const d of DOCS) {
      for (const span of inlineCode(d.text)) {
        if (
          /^(npm (start|test|run|install|ci|rebuild)\b|node |bash |\.venv\/bin\/python |[A-Z_]+=\S+ npm |(scripts|bench)\/\S+\.(sh|mjs|py)( |$))/.test(span)
        ) {
          if (checkCommand(span, `${d.file}: \`${span}\``)) checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(20);
  });

  it("every repository path in inline code exists (scripts/, bench/, src/, native/, test/, examples/, deploy/, models/'s files)", () => {
    let checked = 0;
    for (const d of DOCS) {
      for (const span of inlineCode(d.text)) {
        const m = /^((?:scripts|bench|src|native|test|examples|deploy)\/[\w./-]+?)(?:\.\*)?[:,]?$/.exec(span);
        if (!m || (span.includes('*') && !span.endsWith('.*'))) continue;
        const p = m[1];
        const found = span.endsWith('.*')
          ? readdirSync(path.join(root, path.dirname(p))).some((f) => f.startsWith(`${path.basename(p)}.`))
          : existsSync(path.join(root, p));
        expect(found, `${d.file}: \`${span}\` does not exist`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(30);
  });

  it('every relative link points at a file that exists, and every #anchor at one of its headings', () => {
    const byFile = new Map<string, Doc>(DOCS.map((d) => [d.file, d]));
    for (const d of DOCS) {
      for (const link of relativeLinks(d.text)) {
        const [target, anchor] = link.split('#');
        const file = target === '' ? d.file : path.posix.normalize(path.posix.join(path.posix.dirname(d.file), target));
        expect(existsSync(path.join(root, file)), `${d.file}: the link ${link} points at ${file}, which does not exist`).toBe(true);
        if (anchor === undefined) continue;
        const text = byFile.get(file)?.text ?? (file.endsWith('.md') ? readFileSync(path.join(root, file), 'utf8') : undefined);
        expect(text, `${d.file}: the link ${link} has an anchor into a file that is not Markdown`).toBeDefined();
        expect([...anchors(text!)], `${d.file}: the link ${link}: no heading of ${file} has the anchor #${anchor}`).toContain(anchor);
      }
    }
  });

  it("docs/configuration.md gives every variable's default as src/server/config.ts has it", () => {
    const rows = DOCS.find((d) => d.file === 'docs/configuration.md')!
      .text.split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => l.split(' | '));
    for (const v of VARIABLES) {
      const row = rows.find((cells) => cells[0].split(', ').some((c) => c.replace(/^\| /, '') === `\`${v.name}\``));
      expect(row, `a row for ${v.name}`).toBeDefined();
      const shown = v.default.startsWith('$MODEL_DIR/')
        ? 'in `MODEL_DIR`'
        : v.default === 'none'
          ? 'none'
          : v.name === 'THREADS'
            ? 'the available CPUs'
            : `\`${v.default}\``;
      expect(row![1], v.name).toBe(shown);
    }
  });

  it('has the curl lines that test/server/api.test.ts runs: one for each endpoint of the workshop', () => {
    const lines = DOCS.flatMap((d) => curlLines(d.text));
    for (const endpoint of ['/predict', '/health', '/classes', '/system_status', '/reload_model']) {
      expect(
        lines.some((l) => l.includes(`localhost:8000${endpoint}`)),
        endpoint,
      ).toBe(true);
    }
  });

  it('has the blocks `npm run bench` rewrites: the figures in README.md, the tables in docs/benchmark.md', () => {
    for (const file of ['README.md', 'docs/benchmark.md']) {
      const text = DOCS.find((d) => d.file === file)!.text;
      expect(text.split('<!-- bench:start -->').length, file).toBe(2);
      expect(text.indexOf('<!-- bench:end -->'), file).toBeGreaterThan(text.indexOf('<!-- bench:start -->'));
    }
  });

  it('says each thing once: no paragraph, list item or table row of 120+ characters appears twice', () => {
    const seen = new Map<string, string>();
    for (const d of DOCS) {
      const withoutCode = d.text.replace(/^```\w*\n[\s\S]*?^```/gm, '');
      for (const chunk of withoutCode.split(/\n\s*\n|\n(?=[-|] )/)) {
        const key = chunk.replace(/\s+/g, ' ').trim();
        if (key.length < 120) continue;
        expect(seen.get(key), `${d.file} repeats a passage of ${seen.get(key)}: ${key.slice(0, 80)}...`).toBeUndefined();
        seen.set(key, d.file);
      }
    }
    // The js blocks other than the example are short illustrations, not copies of it.
    expect(DOCS.flatMap((d) => codeBlocks(d.text)).filter((b) => b.lang === 'js').length).toBeGreaterThanOrEqual(2);
  });
});
