// TextTokenizer (src/classifier/tokenizer.ts) on small vocabularies written to a temporary folder (these run
// everywhere): padding, truncation and the attention mask, the LRU cache, arguments and bad vocab files.
// The long texts are in tokenizer.long-texts.test.ts; bert-base-uncased's golden vectors, the corpus and the
// live reference in tokenizer.bert-base-uncased.test.ts.
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { MAX_CACHED_TEXT_LENGTH, significantText, TextTokenizer, VocabError } from '../../src/classifier/tokenizer.js';
import { realIds, SMALL, SMALL_IDS, temporaryVocabs } from './tokenizer.shared.js';

const { dir: tmpDir, vocabFile } = temporaryVocabs();

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
    const file = path.join(tmpDir(), content === null ? 'missing.txt' : `bad-${name.replace(/\W+/g, '-')}.txt`);
    if (content !== null) writeFileSync(file, content);
    const error = await TextTokenizer.fromVocab(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VocabError);
    expect(error).toMatchObject({ name: 'VocabError', code, path: file });
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a directory and a file too big for a vocab.txt', async () => {
    const dir = path.join(tmpDir(), 'a-folder');
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
