// What the tokenizer tests (tokenizer.small-vocab, tokenizer.long-texts and tokenizer.bert-base-uncased .test.ts)
// share: the check of an encoding's padding and attention mask, a small vocabulary of their own, and a temporary
// folder for vocabulary files.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, expect } from 'vitest';

import type { EncodedText } from '../../src/classifier/tokenizer.js';

/** The real ids ([CLS] to [SEP]), after checking the padding and the mask. */
export function realIds(e: EncodedText, maxLength: number, padId: number): number[] {
  expect(e.inputIds).toBeInstanceOf(BigInt64Array);
  expect(e.attentionMask).toBeInstanceOf(BigInt64Array);
  expect(e.inputIds.length).toBe(maxLength);
  expect(e.attentionMask.length).toBe(maxLength);
  expect(e.length).toBeGreaterThanOrEqual(2);
  expect(e.length).toBeLessThanOrEqual(maxLength);
  expect(e.tokens.length).toBe(e.length);
  const mask = Array.from(e.attentionMask, Number);
  expect(mask).toEqual([...Array(e.length).fill(1), ...Array(maxLength - e.length).fill(0)]);
  const ids = Array.from(e.inputIds, Number);
  expect(ids.slice(e.length)).toEqual(Array(maxLength - e.length).fill(padId));
  return ids.slice(0, e.length);
}

// A small vocabulary whose special tokens are not where bert-base-uncased has them: [PAD] is 2, not 0.
export const SMALL = [
  'hello',
  '[SEP]',
  '[PAD]',
  'world',
  '[CLS]',
  '[UNK]',
  'pizza',
  'steak',
  'sushi',
  '##s',
  ',',
  '!',
  '.',
  'a',
  'b',
  'c',
  'x',
  '##x',
  'cafe',
  'image',
  'of',
  '[MASK]',
  '##a',
  '##b',
  '##c',
  '寿',
  '司',
  '?',
];
export const SMALL_IDS = Object.fromEntries(SMALL.map((t, i) => [t, i]));

/**
 * A temporary folder for the calling test file (made before its tests, removed after them): `dir()` is its path
 * once made, `vocabFile(name, lines)` writes a vocab.txt there and gives its path.
 */
export function temporaryVocabs(): { dir: () => string; vocabFile: (name: string, lines: readonly string[] | string) => string } {
  let tmp: string | undefined;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'tokenizer-test-'));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  const dir = (): string => {
    if (!tmp) throw new Error('temporaryVocabs(): the folder is made in beforeAll; use it from a test');
    return tmp;
  };
  return {
    dir,
    vocabFile(name, lines) {
      const file = path.join(dir(), name);
      writeFileSync(file, typeof lines === 'string' ? lines : `${lines.join('\n')}\n`);
      return file;
    },
  };
}
