// What a client is told when POST /reload_model fails: the file at fault by its name in the model folder and
// what is wrong with it, in a sentence. Never a server path or the internals of TorchScript or ONNX Runtime:
// those go to the log with the full error. Nor any of a file's content: the folder reader's reasons never
// quote it (model-folder.ts), and no other error's message is passed on.
import path from 'node:path';

import { ModelFolderError } from '../classifier/model-folder.js';

const WHAT: Record<string, string> = {
  ERR_MODEL_FILE_MISSING: 'is missing',
  ERR_MODEL_CHECKSUM: 'does not match the SHA-256 in model.json (changed or corrupt since export)',
  ERR_MODEL_VARIANT: 'records no int8 variant that can serve (PRECISION=int8): none, or one that did not pass',
  ERR_NOT_TORCHSCRIPT: 'is not a TorchScript model',
  ERR_MODEL_NOT_FOUND: 'is missing',
  ERR_MODEL_CORRUPT: 'is truncated or corrupt',
  ERR_LIBTORCH_TOO_OLD: 'was saved by a newer PyTorch than this LibTorch can read',
  ERR_MODEL_MISMATCH: 'does not match the class mapping (or the other part of the model)',
  ERR_MODEL_LOAD: 'cannot be loaded',
  ERR_MODEL_OPTIMIZE: 'cannot be optimised for inference',
  ERR_VOCAB_NOT_FOUND: 'is missing',
  ERR_VOCAB_READ: 'cannot be read',
  ERR_VOCAB_EMPTY: 'is empty',
  ERR_VOCAB_MALFORMED: 'is not a vocab.txt (one token a line)',
  ERR_VOCAB_SPECIAL_TOKENS: 'lacks one of [PAD], [UNK], [CLS], [SEP]',
};

/** The file names a message mentions by absolute path, in the order they appear. */
function mentionedFiles(message: string): string[] {
  return [...message.matchAll(/(\/[^\s'"():,]+)/g)].map((m) => m[1]).filter((p) => path.extname(p) !== '');
}

export function reloadFailure(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown; file?: unknown; path?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  // ModelFolderError names its file; VocabError its path; the backends' errors name it in their message.
  const file = typeof e.file === 'string' ? e.file : typeof e.path === 'string' ? e.path : mentionedFiles(message)[0];
  const name = file ? path.basename(file) : undefined;
  if (err instanceof ModelFolderError && err.code === 'ERR_MODEL_FILE_INVALID') {
    // The folder reader's reasons are about the file's content (an index, a key): worth saying, without paths.
    const reason = message.slice(message.indexOf(': ') + 2).replaceAll(/\/[^\s'"():,]+\/([^/\s'"():,]+)/g, '$1');
    return `Reload failed: ${name} is invalid: ${reason}`;
  }
  const what = typeof e.code === 'string' ? WHAT[e.code] : undefined;
  if (name && what) return `Reload failed: ${name} ${what}; the current model keeps serving`;
  return "Reload failed (the reason is in the service's log); the current model keeps serving";
}
