// The project's Markdown docs as the tests read them: README.md and docs/*.md, their code blocks, inline code,
// curl lines and relative links. test/readme.test.ts checks the commands and links; test/server/api.test.ts runs
// the curl lines against the service.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '..', '..');

export interface Doc {
  /** Relative to the repository's root: README.md, docs/service.md, ... */
  readonly file: string;
  readonly text: string;
}

/** README.md and every docs/*.md. */
export function docs(): Doc[] {
  const files = [
    'README.md',
    ...readdirSync(path.join(REPO, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((f) => `docs/${f}`),
  ];
  return files.map((file) => ({ file, text: readFileSync(path.join(REPO, file), 'utf8') }));
}

/** The fenced code blocks of a Markdown text, with their language (`sh`, `js`, '' for none). */
export function codeBlocks(markdown: string): { lang: string; code: string }[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((m) => ({ lang: m[1], code: m[2] }));
}

/** The text outside fenced code blocks. */
export function prose(markdown: string): string {
  return markdown.replace(/^```\w*\n[\s\S]*?^```/gm, '');
}

/** The shell command lines of a Markdown text's sh/bash blocks: continuations joined, comments dropped. */
export function shellLines(markdown: string): string[] {
  return codeBlocks(markdown)
    .filter((b) => b.lang === 'sh' || b.lang === 'bash')
    .flatMap((b) => b.code.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** curl lines of a Markdown file's ```sh blocks, joined across their backslash continuations. */
export function curlLines(markdown: string): string[] {
  return shellLines(markdown).filter((l) => l.startsWith('curl '));
}

/** Inline code spans outside code blocks (a span may run over a line break: it is joined with a space). */
export function inlineCode(markdown: string): string[] {
  return [...prose(markdown).matchAll(/(?<!`)`([^`]+)`(?!`)/g)].map((m) => m[1].replace(/\s*\n\s*/g, ' ').trim());
}

/** Relative links `[text](target)` and images outside code blocks: `target` without a scheme or a mailto. */
export function relativeLinks(markdown: string): string[] {
  return [
    ...prose(markdown)
      .replace(/`[^`]*`/g, '')
      .matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g),
  ]
    .map((m) => m[1])
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** GitHub's anchors of a Markdown text's headings (lower case, punctuation dropped, spaces to '-', -1 for repeats). */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = m[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}
