// The service's one error handler, and the error it throws on purpose. Every failure answers FastAPI's body
// shape, `{"detail": ...}`, so that the workshop's clients read it as they always did:
//   HttpError (a route's deliberate answer)        its status and detail
//   ImageError (the upload is not a usable image)  400 with its message
//   multer's limits                                413 (too large), 400 (too many parts), 422 (an unexpected file field)
//   a multipart body that cannot be parsed         400
//   anything else                                  500 "Internal Server Error", details only in the log
import type { ErrorRequestHandler, RequestHandler } from 'express';
import multer from 'multer';

import { ImageError } from '../classifier/image-error.js';
import type { ErrorBody, ValidationError } from './api-schema.js';
import { textTooLong, uploadTooLarge } from './messages.js';
import { closeAfterAnswer, mayDrainUnreadBody } from './request-body.js';

export class HttpError extends Error {
  override readonly name = 'HttpError';

  /** Response headers that go with it (e.g. Retry-After). */
  readonly headers: Readonly<Record<string, string>>;

  /** `detail` goes to the client as is (a message, or a 422's complaints); `cause` only to the log. */
  constructor(
    readonly status: number,
    readonly detail: ErrorBody['detail'],
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(typeof detail === 'string' ? detail : JSON.stringify(detail), options);
    this.headers = options?.headers ?? {};
  }
}

/** 503 with Retry-After: the service is too busy to take this request now. */
export function busy(detail: string, retryAfterSeconds: number, cause?: unknown): HttpError {
  return new HttpError(503, detail, { cause, headers: { 'Retry-After': String(retryAfterSeconds) } });
}

/** FastAPI's request validation error (422), e.g. for a missing form field. */
export function validationError(type: string, loc: ValidationError['loc'], msg: string, input: unknown = null): HttpError {
  return new HttpError(422, [{ type, loc, msg, input }]);
}

export function missingField(field: string): HttpError {
  return validationError('missing', ['body', field], 'Field required');
}

const STATUS_TEXT: Record<number, string> = { 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error' };

/** Unknown paths: FastAPI's 404. */
export const notFound: RequestHandler = (_req, _res, next) => next(new HttpError(404, STATUS_TEXT[404]));

/** A known path with another method: FastAPI's 405, with the Allow header. */
export function methodNotAllowed(...allowed: string[]): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Allow', allowed.join(', '));
    next(new HttpError(405, STATUS_TEXT[405]));
  };
}

/** nginx's code for a request whose client went away before the answer: logged, never sent. */
export const CLIENT_CLOSED_REQUEST = 499;

export function errorHandler(options: { maxUploadBytes: number }): ErrorRequestHandler {
  return (err, req, res, _next) => {
    // Answered already (an upload cut at its limit): the error is the parser's, about the cut body.
    if (res.headersSent) return;
    // The client disconnected (mid-upload, typically): nobody reads an answer, and it is not our failure.
    if (req.readableAborted || req.socket?.destroyed) {
      res.statusCode = CLIENT_CLOSED_REQUEST;
      res.locals.log = { ...res.locals.log, client_disconnected: true, reason: (err as Error).message };
      res.end();
      return;
    }
    const { status, detail } = toResponse(err, options.maxUploadBytes);
    // Past MAX_UPLOAD_MB the rest of the upload is not read: the connection closes once the 413 is out. So does
    // any refusal that left a body of no declared length, or one over the bound, unread (an endless body).
    if (status === 413 || !mayDrainUnreadBody(req, options.maxUploadBytes)) {
      closeAfterAnswer(req, res);
    }
    // 5xx are ours: their cause goes to the request's log line (pino-http reads res.err), never to the client.
    // 4xx are the client's: the answer's detail joins the log line.
    // 503s are answers about load, not failures: logged as the client's (no stack), like 4xx.
    if (status >= 500 && status !== 503) (res as { err?: unknown }).err = (err as Error).cause ?? err;
    else res.locals.log = { ...res.locals.log, detail, code: (err as { code?: unknown }).code };
    if (err instanceof HttpError) for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
    res.status(status).json({ detail } satisfies ErrorBody);
  };
}

function toResponse(err: unknown, maxUploadBytes: number): { status: number; detail: ErrorBody['detail'] } {
  if (err instanceof HttpError) return { status: err.status, detail: err.detail };
  if (err instanceof ImageError) return { status: 400, detail: err.message };
  if (err instanceof multer.MulterError) {
    switch (err.code) {
      case 'LIMIT_FILE_SIZE':
        return { status: 413, detail: uploadTooLarge(maxUploadBytes) };
      case 'LIMIT_UNEXPECTED_FILE':
        return {
          status: 422,
          detail: [{ type: 'unexpected_file', loc: ['body', err.field ?? ''], msg: "Unexpected file field: send one file, as 'image'", input: null }],
        };
      case 'LIMIT_FIELD_VALUE':
        // a text over MAX_TEXT_BYTES: too large, like the file
        return { status: 413, detail: textTooLong(err.field) };
      case 'LIMIT_PART_COUNT':
      case 'LIMIT_FILE_COUNT':
      case 'LIMIT_FIELD_KEY':
      case 'LIMIT_FIELD_COUNT':
        // a form of another shape than /predict's (Starlette answers 400 "Too many fields")
        return { status: 400, detail: `The form cannot be read: ${err.message.toLowerCase()} (send one image and at most one text)` };
      default:
        // A malformed form: a part without a name, an unusable field name, an aborted stream.
        return { status: 400, detail: `The form cannot be read: ${err.message.toLowerCase()}` };
    }
  }
  // body parsing errors from busboy (through multer) and from Express carry a 4xx status, or none at all
  const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return { status, detail: (err as Error).message };
  if (isMultipartParseError(err)) return { status: 400, detail: 'There was an error parsing the body' };
  return { status: 500, detail: STATUS_TEXT[500] };
}

/** busboy's errors have no code; their messages are its own, and few. */
function isMultipartParseError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : '';
  return /^(Multipart: |Unexpected end of form|Malformed part header|Unsupported content type|Missing Content-Type)/.test(message);
}
