import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { makePrepareText } from '../../src/classifier/slow-tokenizer-compat.js';
import { significantLength, significantText, TextTokenizer } from '../../src/classifier/tokenizer.js';
import { SMALL, temporaryVocabs } from './tokenizer.shared.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEMO_VOCAB = path.resolve(HERE, '..', '..', 'models', 'vocab.txt');
const MIB = 1024 * 1024;

const { vocabFile } = temporaryVocabs();

// ------------------------------------------------------------------------------------------------------

/** The old makePrepareText (a function called for each character outside ASCII): the new one must agree with it. */
function prepareReference(vocabChars: ReadonlySet<string>): (text: string) => string {
  const RECLASSIFIED = new Set(['\u166D', '\u1734']);
  const opaque = !vocabChars.has('\u2603') && ![...RECLASSIFIED].some((c) => vocabChars.has(c));
  const chinese =
    /[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/u;
  const rewrite = (c: string): string => {
    if (/[\p{C}\p{Mn}\uFFFD]/u.test(c)) return '\0';
    if (/\p{P}/u.test(c) || chinese.test(c)) return ` ${c} `;
    if (opaque && RECLASSIFIED.has(c)) return '\u2603';
    return c;
  };
  return (text) => (/^\p{ASCII}*$/u.test(text) ? text : text.normalize('NFD').replace(/\P{ASCII}/gu, rewrite));
}

/** A seeded generator of random numbers below n. */
function seeded(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
}

/** Pieces of texts that try each unit boundary: words, spaces, punctuation, CJK, special tokens, marks, emoji, surrogates. */
const PIECES = [
  'pizza',
  'steak',
  'Sushi',
  'cafe\u0301',
  'CAFÉ',
  'xxxxxxx',
  'a',
  'b',
  'abc',
  ' ',
  ' ',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '\u00a0',
  '\u3000',
  '\u2009',
  '\u2028',
  '\u0085',
  ',',
  '!',
  '.',
  '?',
  '$',
  '+',
  '[',
  ']',
  '[UNK]',
  '[unk]',
  '[SEP]',
  '[MASK]',
  '[PAD',
  'UNK]',
  '[CLS]',
  '[a]',
  '\u3002',
  '\u00ab',
  '\u00bb',
  '\u2014',
  '\u060c',
  '寿',
  '司',
  '寿司',
  '\u{20000}',
  '\u0301',
  '\u0316\u0301',
  '!\u0301',
  '寿\u0301',
  '\u0903',
  '\u20dd',
  '😀',
  '🍕🍣',
  '\ud800',
  '\udfff',
  '\u0000',
  '\u200b',
  '\ufeff',
  '\ufffd',
  '\u166d',
  '\u1734',
  'x'.repeat(101),
  'ab'.repeat(60),
  'İ',
  'ǅ',
  '\u1100\u1161',
  '\ue000',
];
function randomText(next: (n: number) => number, pieces: number): string {
  let text = '';
  for (let i = 0; i < pieces; i++) text += PIECES[next(PIECES.length)];
  return text;
}

describe('long texts: the work is bounded before it runs, and the tokens are the whole text’s', () => {
  let small: TextTokenizer;
  let demo: TextTokenizer;
  /** maxLength 8192: texts under 32,768 characters are tokenised whole (relevantStart cuts nothing). */
  let whole: TextTokenizer;
  let demoWhole: TextTokenizer;
  beforeAll(async () => {
    small = await TextTokenizer.fromVocab(vocabFile('long.txt', SMALL), { maxLength: 16, cacheSize: 0 });
    whole = await TextTokenizer.fromVocab(vocabFile('long-whole.txt', SMALL), { maxLength: 8192, cacheSize: 0 });
    demo = await TextTokenizer.fromVocab(DEMO_VOCAB, { cacheSize: 0 });
    demoWhole = await TextTokenizer.fromVocab(DEMO_VOCAB, { maxLength: 8192, cacheSize: 0 });
  });

  /** The first maxLength tokens of `text` tokenised whole, [SEP] last. */
  async function wholeTokens(tokenizer: TextTokenizer, text: string, maxLength: number): Promise<string[]> {
    expect(text.length).toBeLessThanOrEqual(4 * 8192);
    const { tokens } = await tokenizer.encode(text);
    return tokens.length <= maxLength ? tokens : [...tokens.slice(0, maxLength - 1), tokens.at(-1)!];
  }

  it('cuts any text to at most significantLength(maxLength) UTF-16 units, never inside a surrogate pair', () => {
    expect(significantLength(128)).toBe(12_928);
    const n = significantLength(128);
    const texts = [
      'x'.repeat(MIB),
      '😀'.repeat(MIB / 4),
      `x${'😀'.repeat(MIB / 4)}`, // the pair that straddles unit n is left out whole
      '\ud800'.repeat(MIB), // lone surrogates stay as they were
      '\udc00\ud800'.repeat(MIB / 2),
      ' '.repeat(MIB),
    ];
    for (const text of texts) {
      const cut = significantText(text, 128);
      expect(text.startsWith(cut)).toBe(true);
      expect(cut.length).toBeLessThanOrEqual(n);
      expect(cut.length).toBeGreaterThanOrEqual(n - 1);
      const last = cut.charCodeAt(cut.length - 1);
      const next = text.charCodeAt(cut.length);
      expect(last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff, JSON.stringify(text.slice(0, 4))).toBe(false);
    }
    expect(significantText(`x${'😀'.repeat(MIB / 4)}`, 128)).toBe(`x${'😀'.repeat((n - 2) / 2)}`);
    expect(significantText('x'.repeat(n), 128)).toBe('x'.repeat(n));
  });

  it('tokenises 1 MiB of punctuation, one word, emoji or decomposed accents from a bounded start, as the whole text', async () => {
    const next = seeded(7);
    const punctuation = Array.from({ length: MIB }, () => ',!.?'[next(4)]).join('');
    const kinds: [string, string, string[]][] = [
      ['punctuation', punctuation, [...punctuation.slice(0, 14)]],
      ['one word', 'x'.repeat(MIB), ['[UNK]']],
      ['emoji', '🍕🍣'.repeat(MIB / 8), ['[UNK]']],
      ['decomposed accents', 'a\u0301'.repeat(MIB / 2), ['[UNK]']], // aaaa… after the accents go: over 100 characters
      ['Chinese punctuation', '\u3002'.repeat(MIB), Array(14).fill('[UNK]')],
      ['words', 'pizza, steak! '.repeat(MIB / 14), ['pizza', ',', 'steak', '!', 'pizza', ',', 'steak', '!', 'pizza', ',', 'steak', '!', 'pizza', ',']],
      ['words and no-break spaces', 'pizza\u00a0'.repeat(MIB / 6), Array(14).fill('pizza')],
    ];
    for (const [kind, text, tokens] of kinds) {
      // What is tokenised (and prepared on the event loop) is bounded whatever the text: the whole 1 MiB took
      // 0.3 to 10 s before the cut (a 1 MiB word: the binding's 0.6 s). Its cost is measured by bench:texts.
      expect(significantText(text, small.maxLength).length, kind).toBeLessThanOrEqual(significantLength(small.maxLength));
      expect((await small.encode(text)).tokens, kind).toEqual(['[CLS]', ...tokens, '[SEP]']);
    }
  });

  it('gives the same tokens for a long text as for the whole of it (random texts of every kind of unit boundary)', async () => {
    const next = seeded(20261207);
    let cut = 0;
    for (let i = 0; i < 300; i++) {
      // 16 tokens: long texts are cut by relevantStart (over 64 characters) or by significantLength (1,616).
      const text = randomText(next, 20 + next(400));
      const significant = significantText(text, 16);
      // The documented condition: the whole text is significant, or its 16 words are within the first 1,616 units.
      if (text.length > significantLength(16) && significant.length >= significantLength(16) - 1) continue;
      if (significant.length < text.length) cut++;
      expect((await small.encode(text)).tokens, JSON.stringify(text)).toEqual(await wholeTokens(whole, text, 16));
      expect((await demo.encode(text)).tokens, JSON.stringify(text)).toEqual(await wholeTokens(demoWhole, text, 128));
    }
    expect(cut).toBeGreaterThan(100);
  });

  it('gives the same tokens for ordinary long texts as for the whole of them, with the demo vocabulary', async () => {
    const texts = [
      'A photo of a margherita pizza, with basil; and a side of fries. '.repeat(300),
      'Ramen 🍜 (tonkotsu) — with chāshū & nori!! '.repeat(400),
      '寿司と刺身、天ぷら。'.repeat(2000),
      'crème brûlée, café au lait, jalapeño, smörgåsbord; '.repeat(400),
      `${'x'.repeat(150)} ${'pizza '.repeat(3000)}`,
      'pizza[SEP]steak[UNK][unk] [MASK]'.repeat(700),
    ];
    for (const text of texts) {
      expect(significantText(text, 128).length).toBeLessThan(text.length);
      expect((await demo.encode(text)).tokens, text.slice(0, 40)).toEqual(await wholeTokens(demoWhole, text, 128));
    }
  });

  it('prepares texts as the per-character rewrite did (random texts, both kinds of vocabulary)', () => {
    const next = seeded(99);
    for (const chars of [new Set<string>(), new Set(['\u166d'])]) {
      const prepare = makePrepareText(chars);
      const reference = prepareReference(chars);
      for (let i = 0; i < 500; i++) {
        const text = randomText(next, 1 + next(60));
        expect(prepare(text), JSON.stringify(text)).toBe(reference(text));
      }
      // Every code point of the first planes, and the astral ones in steps.
      let all = '';
      for (let cp = 0; cp < 0x30000; cp += cp < 0x10000 ? 1 : 7) all += String.fromCodePoint(cp);
      expect(prepare(all) === reference(all)).toBe(true);
    }
  });
});
