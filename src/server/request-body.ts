// The bodies that no route reads. Only POST /predict reads one (the upload, bounded by uploads.ts): any other
// request's body is never read, a refusal's unread upload is dropped only when it declared a length within
// the bound, and a client that asks `Expect: 100-continue` for an upload over the bound is not told to send it.
// Otherwise Node reads an unread body to its end to keep the connection alive: an endless body to an unknown
// path was read for UPLOAD_TIMEOUT (603 MiB in 60 s).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

import type { RequestHandler } from 'express';

import { bodyReadTurns } from './read-turns.js';

/**
 * The longest text /predict reads (UTF-8 bytes; longer: 413). 128 tokens never need more than the text's first
 * 12,928 UTF-16 units (the tokenizer's significantText), which UTF-8 holds in 39 KB at most. The bound is also
 * what keeps a text's decoding off the event loop's long tasks: busboy decodes a field whole, in one go (a
 * 1 MiB field of emoji took 5.6 ms, and 64 of them at once held /health for 40 ms).
 */
export const MAX_TEXT_BYTES = 64 * 1024;

/** The most bytes a /predict form may take besides the file: the text and the multipart frame. */
const FORM_OVERHEAD_BYTES = MAX_TEXT_BYTES + 64 * 1024;

/** How long a connection closed after an answer waits, reading nothing more, before it is cut. */
const LINGER_MS = 2_000;

/**
 * Closes a connection whose answer is out while its client may still be sending: our side ends first (FIN) and
 * stops reading (what the client still sends waits in the kernel's buffers, then the client's window closes),
 * and the connection is cut LINGER_MS later. Cut at once, the unread bytes would make the kernel reset the
 * connection, and a client still sending could lose the answer it had not read yet; read on, an endless body
 * would be read for as long as the client sends (nginx's lingering_close reads on for a bounded time; here
 * nothing is read). Node ends a `Connection: close` answer's socket with destroySoon(): that is where the wait
 * goes in. Idempotent: Node and the code that answered may both call destroySoon().
 */
export function lingerOnClose(socket: Socket): void {
  const state = socket as { lingering?: boolean; closing?: boolean };
  if (state.lingering) return;
  state.lingering = true;
  socket.destroySoon = function lingeringClose(this: Socket): void {
    if (this.destroyed || state.closing) return;
    state.closing = true;
    this.end();
    // Node's HTTP parser reads the socket itself (a drained request resumes it): pausing the socket stops that.
    this.pause();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/** An answer that closes its connection once it is out, lingering (above) rather than reading on. */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  bodyReadTurns.forget(req);
  if (req.socket) lingerOnClose(req.socket);
  res.once('finish', () => req.socket?.destroySoon());
}

/** The most bytes a /predict request may declare: the upload bound and the form's other fields. */
export function uploadBound(maxUploadBytes: number): number {
  return maxUploadBytes + FORM_OVERHEAD_BYTES;
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
  return req.complete || (Number.isFinite(declared) && declared <= uploadBound(maxUploadBytes));
}

/**
 * `Expect: 100-continue`: Node answers 100 Continue to every such request unless the server handles
 * 'checkContinue'. Here only an upload to POST /predict within the bound is told to continue; any other (a
 * Content-Length over the bound: its 413; another path: its answer) is answered without it, and the client
 * then never sends the body. Each goes on as a 'request', through every listener the server has.
 */
export function answerExpectContinue(server: Server, maxUploadBytes: number): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const upload = req.method === 'POST' && /^\/predict(\?|$)/.test(req.url ?? '');
    if (upload && !(Number(req.headers['content-length']) > uploadBound(maxUploadBytes))) res.writeContinue();
    server.emit('request', req, res);
  });
}
