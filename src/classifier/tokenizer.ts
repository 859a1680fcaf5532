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
// followed (slow-tokenizer-compat.ts): the Rust code keeps unassigned code points, its Unicode tables miss the
// punctuation, accents and format characters of recent Unicode versions, and one of its CJK ranges has a
// typo. A text is cut first, before any work that grows with it, to the part that decides its 128 tokens
// (significantText, here, and relevantStart there); vocab.txt is read by vocab.ts.
import { LRUCache } from 'lru-cache';
import { Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer, templateProcessing } from 'tokenizers';

import { checkInteger, checkKeys, invalid, isObject } from '../torch/validate.js';
import { makePrepareText, relevantStart } from './slow-tokenizer-compat.js';
import { MASK_TOKEN, parseVocab, readVocab, type Vocab } from './vocab.js';

export { MASK_TOKEN, REQUIRED_SPECIAL_TOKENS, VocabError } from './vocab.js';

/** BERT's WordPiece: a longer word becomes [UNK] whole (transformers' max_input_chars_per_word). */
export const MAX_CHARS_PER_WORD = 100;
/** Texts whose significantText is longer than this (in UTF-16 units) are tokenised every time, not kept in the cache. */
export const MAX_CACHED_TEXT_LENGTH = 16_384;
const MAX_LENGTH_LIMIT = 8192;
const MAX_CACHE_SIZE = 1_000_000;

/**
 * The most UTF-16 units of a text that its maxLength tokens are taken from: maxLength words of up to
 * MAX_CHARS_PER_WORD characters and a space after each (12,928 for 128 tokens).
 */
export function significantLength(maxLength: number): number {
  return maxLength * (MAX_CHARS_PER_WORD + 1);
}

/**
 * The part of `text` that its tokens are computed from (and that the prediction cache keys on): its first
 * significantLength(maxLength) UTF-16 units (one fewer where the cut would split a surrogate pair), then cut
 * by relevantStart after the maxLength-th word. The work is bounded whatever the text: a slice, and a regex
 * over at most those units.
 *
 * It gives the same tokens as the whole text when the text is no longer than that, or when its first
 * maxLength words (units between spaces, punctuation, special tokens and Chinese characters, holding a
 * character that is kept) lie within it: every text of ordinary words, punctuation or CJK. Otherwise those
 * units (12,928 for 128 tokens) hold fewer than maxLength words, so they are mostly words over
 * MAX_CHARS_PER_WORD characters (each one [UNK], however long it runs on), spaces, or characters that are
 * removed; the tokens are then those of these units alone. They are the whole text's when the rest only
 * continues the last word (a text that is one long word, emoji or decomposed accents without spaces: one
 * [UNK]) or holds nothing kept; the words of a text that goes on after such a start are left out.
 */
export function significantText(text: string, maxLength: number): string {
  let end = significantLength(maxLength);
  if (text.length > end) {
    const high = text.charCodeAt(end - 1);
    const low = text.charCodeAt(end);
    if (high >= 0xd800 && high <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) end--;
    text = text.slice(0, end);
  }
  return relevantStart(text, maxLength);
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
   * [1, maxLength] for the model). Any string is accepted: empty, whitespace only, a million characters
   * (truncated to maxLength tokens; see significantText for which characters count), any script, emoji,
   * control characters (removed), lone surrogates. The cache is keyed by significantText.
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

  #lookup(whole: string): Promise<Encoding> {
    let text = significantText(whole, this.maxLength);
    const cache = text.length <= MAX_CACHED_TEXT_LENGTH ? this.#cache : undefined;
    // A part of a longer string is a view of it in V8 (a sliced string): as a key of the cache it would keep
    // the whole text, up to 2 MiB, alive. A copy keeps only its own characters (UTF-16 units as they are).
    if (cache && text.length < whole.length) text = Buffer.from(text, 'utf16le').toString('utf16le');
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
    const encoding = await this.#tokenizer.encode(this.#prepare(text));
    const ids = encoding.getIds();
    const mask = encoding.getAttentionMask();
    const length = mask.indexOf(0) === -1 ? mask.length : mask.indexOf(0);
    if (ids.length !== this.maxLength || mask.slice(length).some((m) => m !== 0)) {
      throw new Error(`The tokenizer gave ${ids.length} ids for a text, expected ${this.maxLength}`);
    }
    return { ids, tokens: encoding.getTokens().slice(0, length), length };
  }
}
