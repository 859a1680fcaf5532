// The bodies that no route reads. Only POST /predict reads one (the upload, bounded by uploads.ts): any other
// request's body is never read, a refusal's unread upload is dropped only when it declared a length within
// the bound, and a client that asks `Expect: 100-continue` for an upload over the bound is not told to send it.
// Otherwise Node reads an unread body to its end to keep the connection alive: an endless body to an unknown
// path was read for UPLOAD_TIMEOUT (603 MiB in 60 s).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

import type { RequestHandler } from 'express';

/**
 * The longest text /predict reads (UTF-8 bytes; longer: 413). 128 tokens never need more than the text's first
 * 12,928 UTF-16 units (the tokenizer's significantText), which UTF-8 holds in 39 KB at most. The bound is also
 * what keeps a text's decoding off the event loop's long tasks: busboy decodes a field whole, in one go (a
 * 1 MiB field of emoji took 5.6 ms, and 64 of them at once held /health for 40 ms).
 */
export const MAX_TEXT_BYTES = 64 * 1024;

/** The most bytes a /predict form may take besides the file: the text and the multipart frame. */
export const FORM_OVERHEAD_BYTES = MAX_TEXT_BYTES + 64 * 1024;

/** How long, and how many bytes, a connection closed after an answer is still read (and dropped) before it is cut. */
const LINGER_MS = 2_000;
const LINGER_BYTES = 1024 * 1024;

/**
 * Closes a connection whose answer is out while its client may still be sending: our side ends first (FIN), and
 * what still arrives is read and dropped for LINGER_MS or LINGER_BYTES at most, then the connection is cut.
 * Cut at once, the unread bytes would make the kernel reset the connection, and a client still sending could
 * lose the answer it had not read yet (nginx's lingering_close does the same). Node ends a `Connection: close`
 * answer's socket with destroySoon(): that is where the wait goes in.
 */
export function lingerOnClose(socket: Socket): void {
  if ((socket as { lingering?: boolean }).lingering) return;
  (socket as { lingering?: boolean }).lingering = true;
  socket.destroySoon = function lingeringClose(this: Socket): void {
    if (this.destroyed) return;
    this.end();
    let dropped = 0;
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > LINGER_BYTES) this.destroy();
    });
    this.once('close', () => clearTimeout(timer));
    this.resume();
  };
}

/** Whether a request comes with a body: a Content-Length above 0, or a chunked one. */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0;
}

/**
 * Any request with a body but POST /predict (the one route that reads one): its answer closes the connection,
 * so that Node does not read the unread body to its end to keep the connection (an endless body to an unknown
 * path was read for UPLOAD_TIMEOUT). Set before the route runs: the answer's headers may go out at once.
 */
export const closeAfterUnreadBody: RequestHandler = (req, res, next) => {
  if (hasBody(req) && !(req.method === 'POST' && req.path === '/predict')) {
    res.setHeader('Connection', 'close');
    lingerOnClose(req.socket);
  }
  next();
};

/**
 * Whether the rest of a body that a refusal (401, 429, 503...) left unread may be read and dropped, keeping the
 * connection for the client's next request: only when it declared a length within the upload bound.
 */
export function mayDrainUnreadBody(req: IncomingMessage, maxUploadBytes: number): boolean {
  const declared = Number(req.headers['content-length']);
  return req.complete || (Number.isFinite(declared) && declared <= maxUploadBytes + FORM_OVERHEAD_BYTES);
}

/**
 * `Expect: 100-continue`: Node answers 100 Continue to every such request unless the server handles
 * 'checkContinue'. Here a request whose Content-Length is over the bound gets its 413 without the 100 (the
 * client then never sends the body); any other is told to continue and handled as usual.
 */
export function answerExpectContinue(server: Server, maxUploadBytes: number, handle: (req: IncomingMessage, res: ServerResponse) => void): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!(Number(req.headers['content-length']) > maxUploadBytes + FORM_OVERHEAD_BYTES)) res.writeContinue();
    handle(req, res);
  });
}
