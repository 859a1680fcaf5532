// vocab.txt, the WordPiece vocabulary of the model's text encoder: read with limits, and parsed as Python's
// BertTokenizer reads it (one token a line, its id the line number, universal newlines), with errors that say
// which file and what is wrong with it.
import { readFile, stat } from 'node:fs/promises';

/**
 * The special tokens, read from vocab.txt (their ids are their line numbers, counted from 0; nothing
 * assumes bert-base-uncased's 0/100/101/102/103: the demo model's vocabulary has them at 0/1/2/3/4).
 * [PAD], [UNK], [CLS] and [SEP] must be there; [MASK] is optional. Written in a text, each of them (in
 * capitals, exactly) is that one token, as with Hugging Face's tokenizers.
 */
export const REQUIRED_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'] as const;
export const MASK_TOKEN = '[MASK]';

/** A vocab.txt is well under 2 MB (bert-base-uncased: 226 KiB); a bigger file is the wrong file. */
const MAX_VOCAB_BYTES = 16 * 1024 * 1024;

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

export interface Vocab {
  /** Token to id (line number). Empty lines are ids that no text gives. */
  ids: Map<string, number>;
  size: number;
  /** Every character that occurs in a token. */
  chars: Set<string>;
}

export async function readVocab(file: string): Promise<Buffer> {
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
export function parseVocab(file: string, bytes: Buffer): Vocab {
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
