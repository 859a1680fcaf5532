// Where /predict's upload is kept while it arrives: multer's memory storage, with two differences that keep a
// large upload from holding the event loop at its end. The file's SHA-256 (the prediction cache's key needs it)
// is computed chunk by chunk as the chunks arrive, and each chunk is copied at once into one buffer sized from
// the request's Content-Length, instead of all of them being joined when the file ends. For a 10 MiB upload,
// joining and hashing at the end held the event loop for several milliseconds at a stretch (WebCrypto's digest
// copies its input on the event loop before hashing elsewhere); spread over the ~160 chunks of 64 KiB, each
// piece takes tens of microseconds.
import { createHash } from 'node:crypto';

import type { StorageEngine } from 'multer';

/** What the storage adds to multer's file object (req.file). */
export interface StoredUpload {
  /** The file's bytes (a view of a buffer that may be larger). */
  buffer: Buffer;
  size: number;
  /** The SHA-256 of the bytes. */
  sha256: Buffer;
}

/** The first buffer of an upload without a Content-Length (chunked): doubled as needed. */
const INITIAL_BYTES = 1024 * 1024;

/**
 * `maxFileBytes`: multer's limits.fileSize (multer refuses a larger file; busboy hands the storage at most one
 * byte more before it stops), which bounds the buffer too.
 */
export function hashingMemoryStorage(maxFileBytes: number): StorageEngine {
  return {
    _handleFile(req, file, callback) {
      // The declared length of the whole form bounds the file's (by the form's few other bytes); pages never
      // written are never touched, so the difference costs address space, not resident memory.
      const declared = Number(req.headers['content-length']);
      let buffer = Buffer.allocUnsafe(Math.min(maxFileBytes + 1, Number.isFinite(declared) && declared > 0 ? declared : INITIAL_BYTES));
      let size = 0;
      const hash = createHash('sha256');
      file.stream.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        if (size + chunk.length > buffer.length) {
          const grown = Buffer.allocUnsafe(Math.max(size + chunk.length, Math.min(maxFileBytes + 1, 2 * buffer.length)));
          buffer.copy(grown, 0, 0, size);
          buffer = grown;
        }
        chunk.copy(buffer, size);
        size += chunk.length;
      });
      file.stream.once('end', () => {
        const stored: StoredUpload = { buffer: buffer.subarray(0, size), size, sha256: hash.digest() };
        callback(null, stored as Partial<Express.Multer.File>);
      });
    },
    _removeFile(_req, file, callback) {
      delete (file as Partial<Express.Multer.File>).buffer;
      callback(null);
    },
  };
}
