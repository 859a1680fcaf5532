// The bound on an upload's bytes: a request whose Content-Length says more than MAX_UPLOAD_MB (plus the form's
// other fields) is answered 413 before a byte of its body is read; one without a Content-Length (chunked), or
// one that sends more than it declared, is answered 413 the moment it passes the bound. Either way the
// connection is then closed, so the rest is never read (multer alone would read an upload to its end before
// it answers). An upload is read in turns with the others (read-turns.ts). What becomes of the bodies no route
// reads: request-body.ts.
import type { RequestHandler } from 'express';

import type { HTTPError } from './api-schema.js';
import { HttpError } from './errors.js';
import { bodyReadTurns } from './read-turns.js';
import { closeAfterAnswer, uploadBound } from './request-body.js';

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(bytes % (1024 * 1024) === 0 ? 0 : 1);
}

export function limitUploadBytes(maxUploadBytes: number): RequestHandler {
  const limit = uploadBound(maxUploadBytes);
  return (req, res, next) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      return next(
        new HttpError(413, `The upload is larger than the limit of ${mib(maxUploadBytes)} MiB (MAX_UPLOAD_MB): its Content-Length is ${declared} bytes`),
      );
    }
    let received = 0;
    const count = (chunk: Buffer): void => {
      received += chunk.length;
      bodyReadTurns.took(req, chunk.length);
      if (received <= limit) return;
      req.off('data', count);
      if (res.headersSent) return;
      // Answered here, while the parser still waits for the end: the connection closes once the 413 is out.
      res.locals.log = { ...res.locals.log, cut_at_bytes: received };
      res.status(413);
      closeAfterAnswer(req, res);
      res.json({ detail: `The upload is larger than the limit of ${mib(maxUploadBytes)} MiB (MAX_UPLOAD_MB)` } satisfies HTTPError);
    };
    req.on('data', count);
    next();
  };
}
