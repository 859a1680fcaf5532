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
/** What both tokenizers split off as punctuation: Unicode's P, and every ASCII character that is not a letter, digit, space or control. */
const PUNCTUATION = '\\p{P}!-\\/:-@\\[-`{-~';
/** What both tokenizers take for a space: ASCII's, and Unicode's space separators (Zs). */
const SPACE = ' \\t\\n\\r\\p{Zs}';
/**
 * One unit: something a special token could be (brackets around ASCII letters: more than the vocabulary's,
 * in any case), a punctuation character, a Chinese character, or a run of characters that are none of these
 * and not spaces.
 */
const UNIT = new RegExp(`\\[[A-Za-z]+\\]|[${PUNCTUATION}${CHINESE}]|[^${SPACE}${PUNCTUATION}${CHINESE}]+`, 'gu');
/** A character that no step removes: a unit that holds one gives at least one token. */
const KEPT = /(?!\uFFFD)[\p{L}\p{N}\p{P}\p{S}]/u;

/**
 * The start of a long text that gives the same first maxLength tokens as the whole of it, so that a long
 * text costs about what a short one does (the binding tokenises all of a text before it truncates: 6 ms
 * for 10,000 characters, 0.6 s for a million). It ends after the maxLength-th UNIT that gives at least one
 * token. Nothing after the end of a unit changes the tokens before it:
 * - spaces (ASCII whitespace, Zs), punctuation (P, and ASCII's symbols) and Chinese characters end a word
 *   for either tokenizer (prepareText puts spaces around the punctuation and Chinese characters outside
 *   ASCII);
 * - a special token is ASCII letters in brackets, which a unit of its own always holds whole;
 * - NFD reorders marks only up to the previous base character, which spaces, punctuation and Chinese
 *   characters are: NFD(x + m) = NFD(x) + NFD(m) and NFD(m + x) = NFD(m) + NFD(x) for each of them and
 *   every mark m (checked over all of Unicode 17).
 * And each unit counted gives a token: punctuation and special tokens always, a run or a Chinese character
 * when it holds a KEPT character. A text with fewer such units (one long word, say) is taken whole: callers
 * bound its length first (significantText in tokenizer.ts), as the work here, a regex over it, grows with it.
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
const RECLASSIFIED_CHAR = new RegExp(`[${[...RECLASSIFIED].join('')}]`, 'gu');
/** Outside ASCII: a control, format, unassigned, private-use or surrogate code point, U+FFFD, a nonspacing mark. */
const REMOVED = /(?!\p{ASCII})[\p{C}\p{Mn}\uFFFD]/gu;
/** Outside ASCII: punctuation, or one of the slow tokenizer's Chinese characters. */
const SPACED = new RegExp(`(?!\\p{ASCII})[\\p{P}${CHINESE}]`, 'gu');

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
  // Three passes of a regex each, in the order of the rules above (a character that one rewrites is ASCII
  // after it, which the next ones leave), rather than a function called for each character: 20 times less
  // work on the event loop's thread for a text of emoji or accents.
  return (text) => {
    if (/^\p{ASCII}*$/u.test(text)) return text;
    const prepared = text.normalize('NFD').replace(REMOVED, '\0').replace(SPACED, ' $& ');
    return opaque ? prepared.replace(RECLASSIFIED_CHAR, OPAQUE) : prepared;
  };
}
