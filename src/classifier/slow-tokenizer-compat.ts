// Where the tokenizers binding (Rust) and the slow Python BertTokenizer the workshop used disagree, the text
// is prepared so that the binding gives the slow tokenizer's tokens; and a long text is first cut to the part
// that decides its tokens. Plain string work, no tokenizer here.

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
export function relevantStart(text: string, maxLength: number): string {
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
export function makePrepareText(vocabChars: ReadonlySet<string>): (text: string) => string {
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
