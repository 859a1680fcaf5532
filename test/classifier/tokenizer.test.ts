// TextTokenizer (src/classifier/tokenizer.ts) against what the workshop's tokenizer gives:
// - the published golden vectors of huggingface/tokenizers and huggingface/transformers, and the
//   unverified ones, in ../shared/data/bert-base-uncased/tokenizer_golden.json;
// - fixtures/tokenizer_corpus.json: 186 texts and their ids from transformers' slow BertTokenizer with
//   bert-base-uncased's vocab.txt, made by hf_tokenize.py (see there how);
// - the live reference, when a Python with transformers is there (TOKENIZER_REFERENCE_PYTHON, default
//   /opt/torch2/bin/python): hf_tokenize.py on the corpus (it must give the fixture) and on random texts;
// - padding, truncation, attention mask, the LRU cache, arguments and bad vocab files (small vocabularies
//   written to a temporary folder: these run everywhere).
// The parts that need ../shared/data/bert-base-uncased (never committed: a fresh clone has no ../shared)
// are skipped, saying so, when it is absent.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makePrepareText } from '../../src/classifier/slow-tokenizer-compat.js';
import { MAX_CACHED_TEXT_LENGTH, significantLength, significantText, TextTokenizer, VocabError, type EncodedText } from '../../src/classifier/tokenizer.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BERT = path.resolve(HERE, '..', '..', '..', 'shared', 'data', 'bert-base-uncased');
const BERT_VOCAB = path.join(BERT, 'vocab.txt');
const GOLDEN = path.join(BERT, 'tokenizer_golden.json');
const HAS_BERT = existsSync(BERT_VOCAB) && existsSync(GOLDEN);
const NO_BERT = `../shared/data/bert-base-uncased is absent (${BERT}): the checks against bert-base-uncased's vocabulary are skipped`;
const SCRIPT = path.join(HERE, 'hf_tokenize.py');
const FIXTURE = path.join(HERE, 'fixtures', 'tokenizer_corpus.json');
const REFERENCE_PYTHON = process.env.TOKENIZER_REFERENCE_PYTHON || '/opt/torch2/bin/python';
const FUZZ = { count: 500, seed: 20261127 };
const DEMO_VOCAB = path.resolve(HERE, '..', '..', 'models', 'vocab.txt');
const MIB = 1024 * 1024;

if (!HAS_BERT) console.warn(`tokenizer.test.ts: ${NO_BERT}`);

interface ReferenceCase {
  name?: string;
  text: string;
  input_ids: number[];
  fast_input_ids?: number[];
  fast_error?: string;
}

interface Reference {
  transformers: string;
  tokenizers: string;
  python: string;
  unicode: string;
  slow: string;
  fast: string;
  vocab_sha256: string;
  max_length: number;
  disagreements: number;
  cases: ReferenceCase[];
}

/** The real ids ([CLS] to [SEP]), after checking the padding and the mask. */
function realIds(e: EncodedText, maxLength: number, padId: number): number[] {
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

/** Ids as text for failure messages: the first mismatch and its neighbourhood. */
function describeMismatch(text: string, want: number[], got: number[], tokens: string[]): string {
  const at = want.findIndex((id, i) => id !== got[i]);
  const i = at === -1 ? Math.min(want.length, got.length) : at;
  return (
    `${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}: first difference at token ${i}: ` +
    `expected ${JSON.stringify(want.slice(Math.max(0, i - 2), i + 3))}, got ${JSON.stringify(got.slice(Math.max(0, i - 2), i + 3))} ` +
    `(${tokens.slice(Math.max(0, i - 2), i + 3).join(' ')}); lengths ${want.length} and ${got.length}`
  );
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'tokenizer-test-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** A vocab.txt in the temporary folder. */
function vocabFile(name: string, lines: readonly string[] | string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, typeof lines === 'string' ? lines : `${lines.join('\n')}\n`);
  return file;
}

// A small vocabulary whose special tokens are not where bert-base-uncased has them: [PAD] is 2, not 0.
const SMALL = [
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
const SMALL_IDS = Object.fromEntries(SMALL.map((t, i) => [t, i]));

// ------------------------------------------------------------------------------------------------------

describe('padding, truncation and the attention mask (a small vocabulary of its own)', () => {
  let small: TextTokenizer;
  beforeAll(async () => {
    small = await TextTokenizer.fromVocab(vocabFile('small.txt', SMALL), { maxLength: 8 });
  });

  it('reads the special tokens and their ids from vocab.txt', () => {
    expect(small.specialTokens).toEqual({
      pad: { token: '[PAD]', id: 2 },
      unk: { token: '[UNK]', id: 5 },
      cls: { token: '[CLS]', id: 4 },
      sep: { token: '[SEP]', id: 1 },
      mask: { token: '[MASK]', id: 21 },
    });
    expect(small.padId).toBe(2);
    expect(small.vocabSize).toBe(SMALL.length);
    expect(small.maxLength).toBe(8);
  });

  it('pads a short text with the vocabulary’s [PAD] id and masks the padding', async () => {
    const e = await small.encode('Hello, world!');
    expect(e.tokens).toEqual(['[CLS]', 'hello', ',', 'world', '!', '[SEP]']);
    expect(realIds(e, 8, 2)).toEqual([4, 0, 10, 3, 11, 1]);
    expect(Array.from(e.inputIds.slice(6), Number)).toEqual([2, 2]);
  });

  it('gives [CLS] [SEP] and padding for an empty or whitespace-only text', async () => {
    for (const text of ['', ' ', '\t\n\r ', '\u3000\u00a0\u2028', '\u0000\u200b\ufeff']) {
      const e = await small.encode(text);
      expect(realIds(e, 8, 2), JSON.stringify(text)).toEqual([4, 1]);
    }
  });

  it('fills exactly maxLength without padding, and truncates longer texts keeping [SEP] last', async () => {
    const six = await small.encode('pizza steak sushi pizza steak sushi');
    expect(realIds(six, 8, 2)).toEqual([4, 6, 7, 8, 6, 7, 8, 1]);
    const long = await small.encode('pizza steak sushi pizza steak sushi pizza steak');
    expect(realIds(long, 8, 2)).toEqual([4, 6, 7, 8, 6, 7, 8, 1]);
    // truncation inside a word split into pieces keeps the first pieces
    const pieces = await small.encode('a b c d xxxxxx');
    expect(pieces.tokens).toEqual(['[CLS]', 'a', 'b', 'c', '[UNK]', 'x', '##x', '[SEP]']);
  });

  it('splits words into ## pieces, and gives [UNK] for a word it cannot split or of over 100 characters', async () => {
    const wide = await TextTokenizer.fromVocab(vocabFile('small-wide.txt', SMALL), { maxLength: 16 });
    expect((await wide.encode('pizzas ab abc')).tokens).toEqual(['[CLS]', 'pizza', '##s', 'a', '##b', 'a', '##b', '##c', '[SEP]']);
    expect((await wide.encode('pizzaz')).tokens).toEqual(['[CLS]', '[UNK]', '[SEP]']);
    expect((await wide.encode('x'.repeat(100))).length).toBe(16); // 100 characters: split into x ##x ##x ...
    expect((await wide.encode('x'.repeat(101))).tokens).toEqual(['[CLS]', '[UNK]', '[SEP]']);
    expect((await wide.encode(`${'x'.repeat(101)} pizza`)).tokens).toEqual(['[CLS]', '[UNK]', 'pizza', '[SEP]']);
  });

  it('lower-cases, strips accents, splits punctuation and Chinese characters, drops control characters', async () => {
    const wide = await TextTokenizer.fromVocab(vocabFile('small-wide2.txt', SMALL), { maxLength: 32 });
    expect((await wide.encode('IMAGE OF PIZZA')).tokens).toEqual(['[CLS]', 'image', 'of', 'pizza', '[SEP]']);
    expect((await wide.encode('Café CAFÉ cafe\u0301')).tokens).toEqual(['[CLS]', 'cafe', 'cafe', 'cafe', '[SEP]']);
    expect((await wide.encode('pizza,steak!sushi?')).tokens).toEqual(['[CLS]', 'pizza', ',', 'steak', '!', 'sushi', '?', '[SEP]']);
    expect((await wide.encode('寿司pizza')).tokens).toEqual(['[CLS]', '寿', '司', 'pizza', '[SEP]']);
    expect((await wide.encode('pi\u0000z\u0007z\u200ba\u0085 st\u001beak')).tokens).toEqual(['[CLS]', 'pizza', 'steak', '[SEP]']);
    expect((await wide.encode('[MASK] pizza[SEP]')).tokens).toEqual(['[CLS]', '[MASK]', 'pizza', '[SEP]', '[SEP]']);
  });

  it('takes any string: 10,000 characters, CJK, emoji, RTL, lone surrogates', async () => {
    const texts = [
      'pizza '.repeat(1667).slice(0, 10_000),
      '寿司'.repeat(5000),
      '🍕🍣🫓'.repeat(2000),
      'أحب البيتزا '.repeat(800),
      '\ud800pizza\udfff'.repeat(1000),
      'x'.repeat(10_000),
      ' '.repeat(10_000),
    ];
    for (const text of texts) {
      const e = await small.encode(text);
      const ids = realIds(e, 8, 2);
      expect(ids[0]).toBe(4);
      expect(ids[ids.length - 1]).toBe(1);
    }
  });

  it('gives arrays of maxLength for other maxLengths (2 and 512)', async () => {
    const two = await TextTokenizer.fromVocab(vocabFile('small-2.txt', SMALL), { maxLength: 2 });
    expect(realIds(await two.encode('pizza steak'), 2, 2)).toEqual([4, 1]);
    const big = await TextTokenizer.fromVocab(vocabFile('small-512.txt', SMALL), { maxLength: 512 });
    const e = await big.encode('pizza '.repeat(600));
    expect(realIds(e, 512, 2)).toEqual([4, ...Array(510).fill(SMALL_IDS.pizza), 1]);
  });
});

// ------------------------------------------------------------------------------------------------------

describe('the LRU cache', () => {
  it('answers a repeated text from the cache and evicts the least recently used text at its size', async () => {
    const t = await TextTokenizer.fromVocab(vocabFile('lru.txt', SMALL), { maxLength: 8, cacheSize: 3 });
    expect(t.cacheStats).toEqual({ size: 0, maxSize: 3, hits: 0, misses: 0 });
    const first = await t.encode('pizza');
    const again = await t.encode('pizza');
    expect(again).toEqual(first);
    expect(t.cacheStats).toEqual({ size: 1, maxSize: 3, hits: 1, misses: 1 });
    await t.encode('steak');
    await t.encode('sushi'); // full: pizza (least recently used), steak, sushi
    await t.encode('pizza'); // hit: pizza is now the most recently used, steak the least
    await t.encode('hello'); // evicts steak
    expect(t.cacheStats).toEqual({ size: 3, maxSize: 3, hits: 2, misses: 4 });
    await t.encode('sushi');
    await t.encode('pizza');
    await t.encode('hello');
    expect(t.cacheStats).toMatchObject({ hits: 5, misses: 4 });
    await t.encode('steak');
    expect(t.cacheStats).toEqual({ size: 3, maxSize: 3, hits: 5, misses: 5 });
  });

  it('is keyed by the exact text', async () => {
    const t = await TextTokenizer.fromVocab(vocabFile('lru-exact.txt', SMALL), { maxLength: 8 });
    for (const text of ['pizza', 'Pizza', 'pizza ', ' pizza', 'PIZZA']) await t.encode(text);
    expect(t.cacheStats).toMatchObject({ size: 5, hits: 0, misses: 5 });
  });

  it('hands out new arrays: changing a result does not change the cache', async () => {
    const t = await TextTokenizer.fromVocab(vocabFile('lru-copy.txt', SMALL), { maxLength: 8 });
    const a = await t.encode('pizza');
    a.inputIds.fill(99n);
    a.attentionMask.fill(0n);
    a.tokens.length = 0;
    const b = await t.encode('pizza');
    expect(realIds(b, 8, 2)).toEqual([4, 6, 1]);
    expect(b.tokens).toEqual(['[CLS]', 'pizza', '[SEP]']);
    expect(t.cacheStats).toMatchObject({ hits: 1, misses: 1 });
  });

  it('tokenises a text once when it is asked for again while in flight', async () => {
    const t = await TextTokenizer.fromVocab(vocabFile('lru-flight.txt', SMALL), { maxLength: 8 });
    const results = await Promise.all(Array.from({ length: 10 }, () => t.encode('pizza steak')));
    for (const r of results) expect(r.tokens).toEqual(['[CLS]', 'pizza', 'steak', '[SEP]']);
    expect(t.cacheStats).toEqual({ size: 1, maxSize: 1000, hits: 9, misses: 1 });
  });

  it('keeps nothing with cacheSize 0, nor texts whose significant part is over MAX_CACHED_TEXT_LENGTH; clearCache empties it', async () => {
    const none = await TextTokenizer.fromVocab(vocabFile('lru-0.txt', SMALL), { maxLength: 8, cacheSize: 0 });
    await none.encode('pizza');
    await none.encode('pizza');
    expect(none.cacheStats).toEqual({ size: 0, maxSize: 0, hits: 0, misses: 2 });

    // maxLength 512: up to 51,712 significant characters; a word of 20,000 is significant whole.
    const t = await TextTokenizer.fromVocab(vocabFile('lru-long.txt', SMALL), { maxLength: 512 });
    const long = 'x'.repeat(MAX_CACHED_TEXT_LENGTH + 1);
    expect(significantText(long, 512)).toBe(long);
    await t.encode(long);
    await t.encode(long);
    await t.encode('pizza');
    expect(t.cacheStats).toEqual({ size: 1, maxSize: 1000, hits: 0, misses: 3 });
    t.clearCache();
    expect(t.cacheStats).toEqual({ size: 0, maxSize: 1000, hits: 0, misses: 3 });
  });

  it('is keyed by the significant part of a long text: texts that differ only after it share an entry', async () => {
    const t = await TextTokenizer.fromVocab(vocabFile('lru-significant.txt', SMALL), { maxLength: 8 });
    const a = await t.encode(`${'pizza '.repeat(10_000)}steak`);
    const b = await t.encode(`${'pizza '.repeat(10_000)}sushi`);
    expect(b).toEqual(a);
    expect(t.cacheStats).toMatchObject({ size: 1, hits: 1, misses: 1 });
  });
});

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

// ------------------------------------------------------------------------------------------------------

describe('arguments and bad vocab files', () => {
  it('rejects wrong arguments with TypeError or RangeError', async () => {
    const good = vocabFile('args.txt', SMALL);
    const bad: [unknown, unknown, ErrorConstructor, RegExp][] = [
      [123, undefined, TypeError, /Expected the path of a vocab.txt for vocabPath but received 123 of type number/],
      ['', undefined, TypeError, /vocabPath/],
      [good, 'big', TypeError, /Expected an object for options/],
      [good, { maxlength: 64 }, TypeError, /Unknown option 'maxlength'.*maxLength, cacheSize/],
      [good, { maxLength: 1 }, RangeError, /integer between 2 and 8192 for maxLength but received 1/],
      [good, { maxLength: 12.5 }, RangeError, /maxLength/],
      [good, { maxLength: '128' }, TypeError, /maxLength/],
      [good, { cacheSize: -1 }, RangeError, /integer between 0 and 1000000 for cacheSize/],
    ];
    for (const [file, options, type, message] of bad) {
      const call = TextTokenizer.fromVocab(file as string, options as object);
      await expect(call, JSON.stringify(options)).rejects.toThrow(type);
      await expect(TextTokenizer.fromVocab(file as string, options as object)).rejects.toThrow(message);
    }
    const t = await TextTokenizer.fromVocab(good);
    expect(t.maxLength).toBe(128);
    expect(t.cacheStats.maxSize).toBe(1000);
    for (const text of [42, undefined, null, ['pizza'], Buffer.from('pizza')]) {
      await expect(t.encode(text as unknown as string)).rejects.toThrow(TypeError);
    }
    await expect(t.encode(7 as unknown as string)).rejects.toThrow('Expected a string for text but received 7 of type number');
  });

  const cases: [string, string | Buffer | null, string, RegExp][] = [
    ['a missing file', null, 'ERR_VOCAB_NOT_FOUND', /vocabulary file .*missing\.txt does not exist/],
    ['an empty file', '', 'ERR_VOCAB_EMPTY', /is empty/],
    ['a file of blank lines', '\n \n\t\n', 'ERR_VOCAB_EMPTY', /is empty/],
    ['no [PAD]', ['[UNK]', '[CLS]', '[SEP]', 'pizza'].join('\n'), 'ERR_VOCAB_SPECIAL_TOKENS', /lacks the special token \[PAD\]: /],
    ['no [CLS] nor [SEP]', ['[PAD]', '[UNK]', 'pizza'].join('\n'), 'ERR_VOCAB_SPECIAL_TOKENS', /lacks the special tokens \[CLS\], \[SEP\]: /],
    ['lower-case special tokens', ['[pad]', '[unk]', '[cls]', '[sep]'].join('\n'), 'ERR_VOCAB_SPECIAL_TOKENS', /\[PAD\], \[UNK\], \[CLS\], \[SEP\]/],
    ['token-and-id pairs', '[PAD] 0\n[UNK] 1\n[CLS] 2\n[SEP] 3\n', 'ERR_VOCAB_MALFORMED', /line 1 \("\[PAD\] 0"\) holds whitespace/],
    ['a tokenizer.json', JSON.stringify({ model: { vocab: { '[PAD]': 0 } } }, null, 2), 'ERR_VOCAB_MALFORMED', /line 2 .* holds whitespace/],
    [
      'a duplicate token',
      ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'pizza', 'steak', 'pizza'].join('\n'),
      'ERR_VOCAB_MALFORMED',
      /"pizza" is on line 5 and again on line 7/,
    ],
    ['a binary file', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0xff, 0xfe, 0x00, 0x80]), 'ERR_VOCAB_MALFORMED', /not UTF-8 text/],
    ['NUL bytes', '[PAD]\n[UNK]\0\n[CLS]\n[SEP]\n', 'ERR_VOCAB_MALFORMED', /NUL/],
    ['a byte-order mark', '\ufeff[PAD]\n[UNK]\n[CLS]\n[SEP]\n', 'ERR_VOCAB_MALFORMED', /byte-order mark/],
  ];
  it.each(cases)('refuses %s with a VocabError that says why', async (name, content, code, message) => {
    const file = path.join(tmp, content === null ? 'missing.txt' : `bad-${name.replace(/\W+/g, '-')}.txt`);
    if (content !== null) writeFileSync(file, content);
    const error = await TextTokenizer.fromVocab(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VocabError);
    expect(error).toMatchObject({ name: 'VocabError', code, path: file });
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a directory and a file too big for a vocab.txt', async () => {
    const dir = path.join(tmp, 'a-folder');
    mkdirSync(dir, { recursive: true });
    await expect(TextTokenizer.fromVocab(dir)).rejects.toMatchObject({ code: 'ERR_VOCAB_READ', message: expect.stringMatching(/is a directory/) });
    const big = vocabFile('big.txt', SMALL);
    truncateSync(big, 17 * 1024 * 1024); // sparse: nothing is written
    await expect(TextTokenizer.fromVocab(big)).rejects.toMatchObject({ code: 'ERR_VOCAB_MALFORMED', message: expect.stringMatching(/17\.0 MB: too big/) });
  });

  it('accepts CRLF line ends, no newline at the end, empty lines (ids that no text gives) and no [MASK]', async () => {
    const t = await TextTokenizer.fromVocab(vocabFile('crlf.txt', '[UNK]\r\n[CLS]\r\n\r\n[SEP]\r\n[PAD]\r\npizza'), { maxLength: 4 });
    expect(t.vocabSize).toBe(6);
    expect(t.specialTokens).toEqual({
      unk: { token: '[UNK]', id: 0 },
      cls: { token: '[CLS]', id: 1 },
      sep: { token: '[SEP]', id: 3 },
      pad: { token: '[PAD]', id: 4 },
    });
    const e = await t.encode('pizza [MASK]');
    expect(e.tokens).toEqual(['[CLS]', 'pizza', '[UNK]', '[SEP]']); // [ mask ] truncated after the first piece
    expect(realIds(await t.encode(''), 4, 4)).toEqual([1, 3]);
  });
});

// ------------------------------------------------------------------------------------------------------

describe.skipIf(!HAS_BERT)(`bert-base-uncased (${HAS_BERT ? BERT : NO_BERT})`, () => {
  let bert: TextTokenizer;
  let golden: {
    vocab_sha256: string;
    published: Record<string, unknown>[];
    derived_not_published: { cases: Record<string, { tokens: string[]; input_ids: number[]; attention_mask: number[] }> };
  };
  const vocab = () => readFileSync(BERT_VOCAB, 'utf8').split('\n');

  beforeAll(async () => {
    bert = await TextTokenizer.fromVocab(BERT_VOCAB);
    golden = JSON.parse(readFileSync(GOLDEN, 'utf8'));
  });

  it('is the vocabulary the golden vectors and the corpus were made with', () => {
    const sha = createHash('sha256').update(readFileSync(BERT_VOCAB)).digest('hex');
    expect(golden.vocab_sha256).toBe(sha);
    expect(JSON.parse(readFileSync(FIXTURE, 'utf8')).vocab_sha256).toBe(sha);
    expect(bert.vocabSize).toBe(30522);
    expect(bert.specialTokens).toEqual({
      pad: { token: '[PAD]', id: 0 },
      unk: { token: '[UNK]', id: 100 },
      cls: { token: '[CLS]', id: 101 },
      sep: { token: '[SEP]', id: 102 },
      mask: { token: '[MASK]', id: 103 },
    });
  });

  describe('published golden vectors', () => {
    const entry = (test: RegExp) => golden.published.find((p) => test.test(String((p.source as { test: string }).test)))!;

    it("huggingface/tokenizers' BertWordPieceTokenizer test: 'My name is John' (and 'pair')", async () => {
      const pair = entry(/^TestBertWordPieceTokenizer.test_basic_encode$/) as { input_ids: number[]; tokens: string[] };
      // The published encoding is of the pair ('My name is John', 'pair'); the model takes one text:
      // each of the two, encoded alone, is the published [CLS] A [SEP] and [CLS] B [SEP].
      const sepAt = pair.tokens.indexOf('[SEP]');
      const a = await bert.encode('My name is John');
      expect(realIds(a, 128, 0)).toEqual(pair.input_ids.slice(0, sepAt + 1));
      expect(a.tokens).toEqual(pair.tokens.slice(0, sepAt + 1));
      const b = await bert.encode('pair');
      expect(realIds(b, 128, 0)).toEqual([101, ...pair.input_ids.slice(sepAt + 1)]);
      const plain = entry(/add_special_tokens=False/) as { input_ids: number[] };
      expect([...realIds(a, 128, 0).slice(1, -1), ...realIds(b, 128, 0).slice(1, -1)]).toEqual(plain.input_ids);
    });

    it("transformers' test_offsets_with_special_characters: 'A, naïve [MASK] AllenNLP sentence.'", async () => {
      const e = entry(/test_offsets_with_special_characters/) as { tokens: string[]; input_ids_derived_by_vocab_lookup: number[] };
      const got = await bert.encode('A, naïve [MASK] AllenNLP sentence.');
      expect(got.tokens).toEqual(e.tokens);
      expect(realIds(got, 128, 0)).toEqual(e.input_ids_derived_by_vocab_lookup);
      // the published tokens' ids, looked up in vocab.txt (line numbers from 0)
      const lines = vocab();
      expect(e.tokens.map((t) => lines.indexOf(t))).toEqual(e.input_ids_derived_by_vocab_lookup);
    });

    it("transformers' BasicTokenizer tests: the words before WordPiece", async () => {
      const { basic_tokenizer_cases: cases } = entry(/basic tokenizer tests/) as { basic_tokenizer_cases: { input: string; tokens: string[] }[] };
      const inVocab = new Set(vocab());
      expect(cases.length).toBe(5);
      for (const { input, tokens } of cases) {
        const got = (await bert.encode(input)).tokens.slice(1, -1);
        // WordPiece's pieces joined back into words ([UNK]: a word with no pieces in the vocabulary)
        const words: string[] = [];
        for (const t of got) {
          if (t.startsWith('##')) words[words.length - 1] += t.slice(2);
          else words.push(t);
        }
        expect(words.length, JSON.stringify(input)).toBe(tokens.length);
        words.forEach((w, i) => {
          if (w === '[UNK]') expect(inVocab.has(tokens[i]), `${tokens[i]} is [UNK] but is in the vocabulary`).toBe(false);
          else expect(w, JSON.stringify(input)).toBe(tokens[i]);
        });
      }
    });
  });

  it('agrees with the unverified golden entries (confirmed with transformers 4.57.6 and 5.24.0: see the live test)', async () => {
    const cases = Object.entries(golden.derived_not_published.cases);
    expect(cases.length).toBe(7);
    for (const [text, want] of cases) {
      const e = await bert.encode(text);
      expect(realIds(e, 128, 0), text).toEqual(want.input_ids);
      expect(e.tokens).toEqual(want.tokens);
      expect(Array.from(e.attentionMask.slice(0, e.length), Number)).toEqual(want.attention_mask);
    }
  });

  it("gives the slow BertTokenizer's ids for the texts of the corpus (fixtures/tokenizer_corpus.json)", async () => {
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Reference;
    expect(fixture.max_length).toBe(128);
    expect(fixture.cases.length).toBeGreaterThanOrEqual(100);
    const wrong: string[] = [];
    for (const c of fixture.cases) {
      const e = await bert.encode(c.text);
      const ids = realIds(e, 128, 0);
      if (JSON.stringify(ids) !== JSON.stringify(c.input_ids)) wrong.push(`${c.name}: ${describeMismatch(c.text, c.input_ids, ids, e.tokens)}`);
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  describe('the live reference: transformers, run by test/classifier/hf_tokenize.py', () => {
    let live: Reference | undefined;
    let why = '';

    beforeAll(async () => {
      const args = [SCRIPT, '--vocab', BERT_VOCAB, '--corpus', '--fuzz', String(FUZZ.count), '--seed', String(FUZZ.seed)];
      const result = await run(REFERENCE_PYTHON, args);
      if (result.error || result.status === 3) {
        why =
          `${REFERENCE_PYTHON} cannot run transformers (${result.error ?? result.stderr.trim().split('\n').pop()}): ` +
          'the live comparison is skipped (fixtures/tokenizer_corpus.json is still checked). Set TOKENIZER_REFERENCE_PYTHON ' +
          'to a Python with transformers (pip install transformers) to run it.';
        console.warn(`tokenizer.test.ts: ${why}`);
        return;
      }
      if (result.status !== 0) throw new Error(`${REFERENCE_PYTHON} hf_tokenize.py failed (exit ${result.status}):\n${result.stderr}`);
      live = JSON.parse(result.stdout) as Reference;
    }, 180_000);

    it('gives the ids of the committed fixture for the corpus', (ctx) => {
      if (!live) return ctx.skip(why);
      const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Reference;
      const corpus = live.cases.filter((c) => !c.name?.startsWith('fuzz '));
      expect(corpus.map((c) => c.text)).toEqual(fixture.cases.map((c) => c.text));
      expect(live.vocab_sha256).toBe(fixture.vocab_sha256);
      corpus.forEach((c, i) => {
        expect(c.input_ids, c.name).toEqual(fixture.cases[i].input_ids);
      });
    });

    it('confirms the unverified golden entries (their texts are in the corpus)', (ctx) => {
      if (!live) return ctx.skip(why);
      const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')).derived_not_published.cases as Record<string, { input_ids: number[] }>;
      for (const [text, want] of Object.entries(golden)) {
        const c = live.cases.find((l) => l.text === text);
        expect(c, `${JSON.stringify(text)} is not in hf_tokenize.py's corpus`).toBeDefined();
        expect(c!.input_ids, text).toEqual(want.input_ids);
        expect(c!.fast_input_ids, `BertTokenizerFast on ${text}`).toBeUndefined();
      }
    });

    it(`gives the slow tokenizer's ids for the corpus and ${FUZZ.count} random texts`, async (ctx) => {
      if (!live) return ctx.skip(why);
      const nodeUnicode = process.versions.unicode ?? '0';
      const fuzzOk = compareVersions(live.unicode, nodeUnicode) <= 0;
      const cases = live.cases.filter((c) => fuzzOk || !c.name?.startsWith('fuzz '));
      const wrong: string[] = [];
      for (const c of cases) {
        const e = await bert.encode(c.text);
        const ids = realIds(e, 128, 0);
        if (JSON.stringify(ids) !== JSON.stringify(c.input_ids)) wrong.push(`${c.name}: ${describeMismatch(c.text, c.input_ids, ids, e.tokens)}`);
      }
      const fast = live.cases.filter((c) => c.fast_input_ids || c.fast_error).map((c) => c.name);
      console.log(
        `tokenizer reference: transformers ${live.transformers} (${live.slow} vs ${live.fast}), Python ${live.python} ` +
          `(Unicode ${live.unicode}; Node ${nodeUnicode}): ${cases.length} texts compared${fuzzOk ? '' : ' (random texts left out: Python knows a newer Unicode than Node)'}; ` +
          `the fast tokenizer differs from the slow one on ${fast.length} (${fast.filter((n) => !n?.startsWith('fuzz ')).join(', ')} and random ones)`,
      );
      expect(wrong, wrong.slice(0, 10).join('\n')).toEqual([]);
    });
  });
});

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function run(command: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => resolve({ status: null, stdout, stderr, error: e.message }));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.on('error', () => {}); // a Python that is not there has no pipe to write to
    child.stdin.end();
  });
}
