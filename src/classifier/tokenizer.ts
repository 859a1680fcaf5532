// The model's text input: BERT uncased WordPiece, exactly as the workshop built it with
// `BertTokenizer.from_pretrained('bert-base-uncased')` and `max_length=128` (padding='max_length',
// truncation=True): lower-case, strip accents, split on whitespace, punctuation and Chinese characters,
// WordPiece with `##` pieces ([UNK] for a word it cannot split and for words over 100 characters),
// `[CLS] … [SEP]`, truncated to 128 tokens with [SEP] kept last, padded with [PAD].
//
// The work is done by Hugging Face's `tokenizers` (its native binding: BertNormalizer, BertPreTokenizer,
// WordPiece, a [CLS]/[SEP] template, truncation and padding), built from the model folder's vocab.txt.
// Its encode() runs on the libuv thread pool and returns a promise, so TextTokenizer.encode is async too.
//
// Where the binding's Rust tokenizer and the slow Python one the workshop used disagree, the slow one is
// followed (see makePrepareText): the Rust code keeps unassigned code points, its Unicode tables miss the
// punctuation, accents and format characters of recent Unicode versions, and one of its CJK ranges has a
// typo. A long text is cut first to the part that decides its 128 tokens (see relevantStart).
import { readFile, stat } from 'node:fs/promises';

import { LRUCache } from 'lru-cache';
import { Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer, templateProcessing } from 'tokenizers';

import { checkInteger, checkKeys, invalid, isObject } from '../torch/validate.js';

/**
 * The special tokens, read from vocab.txt (their ids are their line numbers, counted from 0; nothing
 * assumes bert-base-uncased's 0/100/101/102/103: the demo model's vocabulary has them at 0/1/2/3/4).
 * [PAD], [UNK], [CLS] and [SEP] must be there; [MASK] is optional. Written in a text, each of them (in
 * capitals, exactly) is that one token, as with Hugging Face's tokenizers.
 */
export const REQUIRED_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'] as const;
export const MASK_TOKEN = '[MASK]';

/** BERT's WordPiece: a longer word becomes [UNK] whole (transformers' max_input_chars_per_word). */
export const MAX_CHARS_PER_WORD = 100;
/** Texts longer than this (in UTF-16 units) are tokenised every time, not kept in the cache. */
export const MAX_CACHED_TEXT_LENGTH = 16_384;
/** A vocab.txt is well under 2 MB (bert-base-uncased: 226 KiB); a bigger file is the wrong file. */
const MAX_VOCAB_BYTES = 16 * 1024 * 1024;
const MAX_LENGTH_LIMIT = 8192;
const MAX_CACHE_SIZE = 1_000_000;

/**
 * A vocab.txt that cannot be used; `code` is stable:
 * ERR_VOCAB_NOT_FOUND, ERR_VOCAB_READ, ERR_VOCAB_EMPTY, ERR_VOCAB_MALFORMED, ERR_VOCAB_SPECIAL_TOKENS.
 */
export class VocabError extends Error {
  override readonly name = 'VocabError';

  constructor(
    message: string,
    readonly code: string,
    readonly path: string,
  ) {
    super(message);
  }
}

export interface TokenizerOptions {
  /** Tokens per text, [CLS] and [SEP] included: longer texts are truncated, shorter ones padded. 128. */
  maxLength?: number;
  /** How many texts the LRU cache keeps (0: no cache). 1000, as the workshop's lru_cache. */
  cacheSize?: number;
}

export interface SpecialToken {
  token: string;
  id: number;
}

export interface SpecialTokens {
  pad: SpecialToken;
  unk: SpecialToken;
  cls: SpecialToken;
  sep: SpecialToken;
  /** Absent when the vocabulary has no [MASK]. */
  mask?: SpecialToken;
}

export interface EncodedText {
  /** `maxLength` token ids: [CLS], the text's tokens, [SEP], then [PAD]s (the [PAD] id from vocab.txt). */
  inputIds: BigInt64Array;
  /** 1 for the `length` real tokens ([CLS] and [SEP] included), 0 for the padding. */
  attentionMask: BigInt64Array;
  /** The real tokens, [CLS] to [SEP] (no [PAD]s): for logs and tests. */
  tokens: string[];
  /** How many real tokens: 2 ([CLS] [SEP]) for an empty text, at most maxLength. */
  length: number;
}

export interface CacheStats {
  /** Texts in the cache now. */
  size: number;
  maxSize: number;
  /** encode() calls answered from the cache (or joined to an encoding of the same text in flight). */
  hits: number;
  /** encode() calls that tokenised. */
  misses: number;
}

interface Encoding {
  ids: number[];
  tokens: string[];
  length: number;
}

/**
 * BERT WordPiece tokenisation of the model folder's vocab.txt, with an LRU cache of texts.
 *
 *     const tokenizer = await TextTokenizer.fromVocab('models/vocab.txt');
 *     const { inputIds, attentionMask } = await tokenizer.encode('Image of pizza');  // int64, [1, 128]
 */
export class TextTokenizer {
  readonly vocabPath: string;
  /** Lines in vocab.txt: the size of the model's token embedding. */
  readonly vocabSize: number;
  readonly maxLength: number;
  readonly specialTokens: Readonly<SpecialTokens>;

  readonly #tokenizer: Tokenizer;
  readonly #prepare: (text: string) => string;
  readonly #cache: LRUCache<string, Promise<Encoding>> | undefined;
  readonly #cacheSize: number;
  #hits = 0;
  #misses = 0;

  private constructor(vocabPath: string, vocab: Vocab, maxLength: number, cacheSize: number) {
    this.vocabPath = vocabPath;
    this.vocabSize = vocab.size;
    this.maxLength = maxLength;
    const special = (token: string): SpecialToken => Object.freeze({ token, id: vocab.ids.get(token)! });
    this.specialTokens = Object.freeze({
      pad: special('[PAD]'),
      unk: special('[UNK]'),
      cls: special('[CLS]'),
      sep: special('[SEP]'),
      ...(vocab.ids.has(MASK_TOKEN) ? { mask: special(MASK_TOKEN) } : {}),
    });
    const { pad, unk, cls, sep, mask } = this.specialTokens;

    const tokenizer = new Tokenizer(
      WordPiece.init(Object.fromEntries(vocab.ids), {
        unkToken: unk.token,
        continuingSubwordPrefix: '##',
        maxInputCharsPerWord: MAX_CHARS_PER_WORD,
      }),
    );
    tokenizer.setNormalizer(bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }));
    tokenizer.setPreTokenizer(bertPreTokenizer());
    tokenizer.setPostProcessor(
      templateProcessing(`${cls.token}:0 $A:0 ${sep.token}:0`, undefined, [
        [cls.token, cls.id],
        [sep.token, sep.id],
      ]),
    );
    // The special tokens of the vocabulary, matched in the raw text as transformers does.
    tokenizer.addSpecialTokens([pad, unk, cls, sep, ...(mask ? [mask] : [])].map((t) => t.token));
    tokenizer.setTruncation(maxLength); // [CLS] and [SEP] counted: the text keeps maxLength - 2 tokens
    tokenizer.setPadding({ maxLength, padId: pad.id, padToken: pad.token, padTypeId: 0 });
    this.#tokenizer = tokenizer;
    this.#prepare = makePrepareText(vocab.chars);

    this.#cacheSize = cacheSize;
    this.#cache = cacheSize > 0 ? new LRUCache<string, Promise<Encoding>>({ max: cacheSize }) : undefined;
  }

  /**
   * Reads a vocab.txt (one WordPiece token a line; a token's id is its line number from 0) and builds the
   * tokenizer. Rejects with a VocabError when the file is missing, empty, not a vocab.txt, or lacks one of
   * [PAD], [UNK], [CLS], [SEP]; throws TypeError/RangeError for wrong arguments.
   */
  static async fromVocab(vocabPath: string, options: TokenizerOptions = {}): Promise<TextTokenizer> {
    if (typeof vocabPath !== 'string' || vocabPath.length === 0) invalid('the path of a vocab.txt', 'vocabPath', vocabPath);
    if (!isObject(options)) invalid('an object', 'options', options);
    checkKeys(options, ['maxLength', 'cacheSize'], 'the tokenizer options');
    const maxLength = checkInteger(options.maxLength ?? 128, 'maxLength', 2, MAX_LENGTH_LIMIT);
    const cacheSize = checkInteger(options.cacheSize ?? 1000, 'cacheSize', 0, MAX_CACHE_SIZE);
    const vocab = parseVocab(vocabPath, await readVocab(vocabPath));
    return new TextTokenizer(vocabPath, vocab, maxLength, cacheSize);
  }

  /** The [PAD] id, which fills `inputIds` after the text. */
  get padId(): number {
    return this.specialTokens.pad.id;
  }

  /**
   * The model inputs for one text: int64 `inputIds` and `attentionMask` of `maxLength` each (shape
   * [1, maxLength] for the model). Any string is accepted: empty, whitespace only, 10,000 characters
   * (truncated to maxLength tokens), any script, emoji, control characters (removed), lone surrogates.
   * The arrays are new on every call: the caller may hand them to a Tensor and change them.
   */
  async encode(text: string): Promise<EncodedText> {
    if (typeof text !== 'string') invalid('a string', 'text', text);
    const encoding = await this.#lookup(text);
    const inputIds = new BigInt64Array(this.maxLength);
    const attentionMask = new BigInt64Array(this.maxLength);
    for (let i = 0; i < this.maxLength; i++) {
      inputIds[i] = BigInt(encoding.ids[i]);
      if (i < encoding.length) attentionMask[i] = 1n;
    }
    return { inputIds, attentionMask, tokens: encoding.tokens.slice(), length: encoding.length };
  }

  get cacheStats(): CacheStats {
    return { size: this.#cache?.size ?? 0, maxSize: this.#cacheSize, hits: this.#hits, misses: this.#misses };
  }

  /** Empties the cache (the hit and miss counts stay). */
  clearCache(): void {
    this.#cache?.clear();
  }

  #lookup(text: string): Promise<Encoding> {
    const cache = text.length <= MAX_CACHED_TEXT_LENGTH ? this.#cache : undefined;
    const cached = cache?.get(text);
    if (cached) {
      this.#hits++;
      return cached;
    }
    this.#misses++;
    const pending = this.#tokenize(text);
    if (cache) {
      cache.set(text, pending);
      // A failure is not kept: the next call tries again.
      pending.catch(() => {
        if (cache.peek(text) === pending) cache.delete(text);
      });
    }
    return pending;
  }

  async #tokenize(text: string): Promise<Encoding> {
    const encoding = await this.#tokenizer.encode(this.#prepare(relevantStart(text, this.maxLength)));
    const ids = encoding.getIds();
    const mask = encoding.getAttentionMask();
    const length = mask.indexOf(0) === -1 ? mask.length : mask.indexOf(0);
    if (ids.length !== this.maxLength || mask.slice(length).some((m) => m !== 0)) {
      throw new Error(`The tokenizer gave ${ids.length} ids for a text, expected ${this.maxLength}`);
    }
    return { ids, tokens: encoding.getTokens().slice(0, length), length };
  }
}

// ------------------------------------------------------------------------------------------------------
// vocab.txt

interface Vocab {
  /** Token to id (line number). Empty lines are ids that no text gives. */
  ids: Map<string, number>;
  size: number;
  /** Every character that occurs in a token. */
  chars: Set<string>;
}

async function readVocab(file: string): Promise<Buffer> {
  const what = `The vocabulary file ${file}`;
  try {
    const info = await stat(file);
    if (info.isDirectory()) {
      throw new VocabError(`${what} is a directory; give the vocab.txt in it`, 'ERR_VOCAB_READ', file);
    }
    if (info.size > MAX_VOCAB_BYTES) {
      throw new VocabError(
        `${what} is ${(info.size / 1024 / 1024).toFixed(1)} MB: too big for a vocab.txt (one WordPiece token a line); is it the right file?`,
        'ERR_VOCAB_MALFORMED',
        file,
      );
    }
    return await readFile(file);
  } catch (e) {
    if (e instanceof VocabError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') {
      throw new VocabError(`${what} does not exist: the model folder must hold the vocab.txt its text encoder was trained with`, 'ERR_VOCAB_NOT_FOUND', file);
    }
    throw new VocabError(`${what} cannot be read: ${err.message}`, 'ERR_VOCAB_READ', file);
  }
}

/** Lines as Python's `open(file, encoding='utf-8').readlines()` gives them (universal newlines). */
function parseVocab(file: string, bytes: Buffer): Vocab {
  const what = `The vocabulary file ${file}`;
  const malformed = (why: string) => new VocabError(`${what} is not a vocab.txt (one WordPiece token a line): ${why}`, 'ERR_VOCAB_MALFORMED', file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw malformed('it is not UTF-8 text');
  }
  if (text.trim().length === 0) {
    throw new VocabError(`${what} is empty: it must list the WordPiece tokens, one a line`, 'ERR_VOCAB_EMPTY', file);
  }
  if (text.startsWith('\uFEFF')) throw malformed('it starts with a byte-order mark, which would be part of its first token');
  if (text.includes('\0')) throw malformed('it holds NUL characters (a binary file?)');

  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  const ids = new Map<string, number>();
  const chars = new Set<string>();
  lines.forEach((token, id) => {
    const line = id + 1;
    if (/\s/u.test(token)) {
      throw malformed(`line ${line} (${JSON.stringify(token.slice(0, 40))}) holds whitespace`);
    }
    if (token === '') return;
    const first = ids.get(token);
    if (first !== undefined) throw malformed(`${JSON.stringify(token)} is on line ${first + 1} and again on line ${line}`);
    ids.set(token, id);
    for (const c of token) chars.add(c);
  });
  const missing = REQUIRED_SPECIAL_TOKENS.filter((t) => !ids.has(t));
  if (missing.length > 0) {
    throw new VocabError(
      `${what} lacks the special token${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: a BERT vocab.txt ` +
        `has ${REQUIRED_SPECIAL_TOKENS.join(', ')} (each on a line of its own, in capitals)`,
      'ERR_VOCAB_SPECIAL_TOKENS',
      file,
    );
  }
  return { ids, size: lines.length, chars };
}

// ------------------------------------------------------------------------------------------------------
// Long texts

/**
 * transformers' BasicTokenizer._is_chinese_char, as a character class (the binding's own ranges have
 * 0x2B920 for 0x2B820 in the sixth).
 */
const CHINESE =
  '\\u{4E00}-\\u{9FFF}\\u{3400}-\\u{4DBF}\\u{20000}-\\u{2A6DF}\\u{2A700}-\\u{2B73F}\\u{2B740}-\\u{2B81F}' +
  '\\u{2B820}-\\u{2CEAF}\\u{F900}-\\u{FAFF}\\u{2F800}-\\u{2FA1F}';
const CHINESE_CHAR = new RegExp(`[${CHINESE}]`, 'u');
/** A Chinese character, or a run of characters without ASCII whitespace or Chinese characters. */
const UNIT = new RegExp(`[${CHINESE}]|[^ \\t\\n\\r${CHINESE}]+`, 'gu');
/** A character that no step removes: a unit that holds one gives at least one token. */
const KEPT = /(?!\uFFFD)[\p{L}\p{N}\p{P}\p{S}]/u;

/**
 * The start of a long text that gives the same first maxLength tokens as the whole of it, so that a long
 * text costs about what a short one does (the binding tokenises all of a text before it truncates: 6 ms
 * for 10,000 characters, 0.6 s for a million). It ends after the maxLength-th UNIT that gives at least one
 * token. Nothing after ASCII whitespace or a Chinese character changes the tokens before it: both end a
 * word for either tokenizer, no special token holds them, and NFD reorders marks only up to the previous
 * base character. A text with fewer such units (one long word, say) is taken whole: its cost grows with
 * its length (about 2 ms for 10,000 characters).
 */
function relevantStart(text: string, maxLength: number): string {
  if (text.length <= 4 * maxLength) return text;
  const unit = new RegExp(UNIT);
  let units = 0;
  for (let m = unit.exec(text); m; m = unit.exec(text)) {
    if (KEPT.test(m[0]) && ++units >= maxLength) return text.slice(0, unit.lastIndex);
  }
  return text;
}

// ------------------------------------------------------------------------------------------------------
// Following the slow tokenizer where the binding's differs

/**
 * Characters that Unicode once put in a class the binding still treats them as, but no longer does:
 * U+166D (Po until Unicode 12, now So: the binding splits it off as punctuation) and U+1734 (Mn until
 * Unicode 14, now Mc: the binding strips it as an accent). The slow tokenizer keeps both inside the word.
 */
const RECLASSIFIED = new Set(['\u166D', '\u1734']);
/** A character the binding keeps inside a word like the slow tokenizer does (So, no case, no decomposition). */
const OPAQUE = '\u2603';

/**
 * Rewrites a text so that the binding's BERT normaliser and pre-tokenizer treat it as transformers' slow
 * BasicTokenizer does, by Node's Unicode tables (which know what Python's know). Only characters outside
 * ASCII are touched; ASCII text is passed as it is.
 * - canonical decomposition (NFD) first: the binding lacks some (U+11938), the slow tokenizer strips
 *   accents after NFD;
 * - every control, format, unassigned, private-use or surrogate code point (Unicode category C) and
 *   U+FFFD, and every nonspacing mark (Mn: the accents) becomes NUL, which the binding removes as the slow
 *   tokenizer removes them (NUL rather than nothing, so that no special token is formed across one);
 * - punctuation (category P) and the slow tokenizer's Chinese characters get a space on either side;
 * - RECLASSIFIED characters become OPAQUE, when neither occurs in the vocabulary: a word holding one is
 *   then [UNK] whole, as it is for the slow tokenizer.
 * A character assigned after the Unicode version of the workshop's Python (3.11: Unicode 14.0; 3.12: 15.0)
 * and known to Node (process.versions.unicode: 17.0 for Node 20.20) is unassigned for Python, which
 * removes it; here it is kept (and is [UNK]).
 */
function makePrepareText(vocabChars: ReadonlySet<string>): (text: string) => string {
  const opaque = !vocabChars.has(OPAQUE) && ![...RECLASSIFIED].some((c) => vocabChars.has(c));
  const rewrite = (c: string): string => {
    if (/[\p{C}\p{Mn}\uFFFD]/u.test(c)) return '\0';
    if (/\p{P}/u.test(c) || CHINESE_CHAR.test(c)) return ` ${c} `;
    if (opaque && RECLASSIFIED.has(c)) return OPAQUE;
    return c;
  };
  return (text) => {
    if (/^\p{ASCII}*$/u.test(text)) return text;
    return text.normalize('NFD').replace(/\P{ASCII}/gu, rewrite);
  };
}
