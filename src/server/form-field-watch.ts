// A form field's size, watched as the upload arrives.
//
// busboy (under multer) truncates a field longer than its `fieldSize` limit silently and reports it only at the
// field's end: a text of 1 MiB, where /predict reads 64 KiB, was received and scanned whole before its 413, and
// 64 such requests at once kept 50-110 MB of socket buffers in flight (`npm run bench:texts`: the service's GC,
// ~4 mark-compacts a second, was its event loop's lag). This follows the multipart stream beside busboy, with
// Buffer#indexOf, and says the moment a field (a part without a filename) passes the limit, so that the request
// is answered 413 there and the rest is never read.
//
// It only ever reports what it is sure of: a body it cannot follow (a header block over 16 KiB, no part where a
// part should start) stops the watch, and busboy's own limits and errors answer as before.

/** A part's header block longer than this is not followed (busboy allows 16 KiB of part headers too). */
const MAX_HEADER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

type State = 'seeking' | 'after-delimiter' | 'headers' | 'field' | 'file' | 'done';

export class FormFieldWatch {
  readonly #delimiter: Buffer;
  readonly #maxFieldBytes: number;
  readonly #onTooLong: (field: string) => void;
  // The body's first boundary has no CRLF before it: the watch starts as if one had been read.
  #pending: Buffer = CRLF;
  #state: State = 'seeking';
  #field = '';
  #fieldBytes = 0;

  constructor(boundary: string, maxFieldBytes: number, onTooLong: (field: string) => void) {
    this.#delimiter = Buffer.from(`\r\n--${boundary}`);
    this.#maxFieldBytes = maxFieldBytes;
    this.#onTooLong = onTooLong;
  }

  /** Whether the watch still follows the body (false once it has reported, or given up). */
  get watching(): boolean {
    return this.#state !== 'done';
  }

  push(chunk: Buffer): void {
    if (this.#state === 'done') return;
    const data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = Buffer.alloc(0);
    let at = 0;
    while (at < data.length && this.#state !== 'done') {
      if (this.#state === 'seeking' || this.#state === 'field' || this.#state === 'file') {
        const found = data.indexOf(this.#delimiter, at);
        // Bytes that may start a delimiter cut by the chunk's end wait for the next chunk.
        const end = found === -1 ? Math.max(at, data.length - (this.#delimiter.length - 1)) : found;
        if (this.#state === 'field' && this.#tooLong(end - at)) return;
        if (found === -1) {
          this.#pending = data.subarray(end);
          return;
        }
        at = found + this.#delimiter.length;
        this.#state = 'after-delimiter';
      } else if (this.#state === 'after-delimiter') {
        // "--" ends the body; CRLF starts the next part's headers (RFC 2046's optional whitespace: not followed).
        if (data.length - at < 2) break;
        const next = data.toString('latin1', at, at + 2);
        this.#state = next === '\r\n' ? 'headers' : 'done';
        at += 2;
      } else {
        // headers
        const end = data.indexOf(HEADER_END, at);
        if (end === -1 || end - at > MAX_HEADER_BYTES) {
          if (end !== -1 || data.length - at > MAX_HEADER_BYTES) this.#state = 'done';
          break;
        }
        this.#startPart(data.toString('latin1', at, end));
        at = end + HEADER_END.length;
      }
    }
    if (this.#state !== 'done' && at < data.length) this.#pending = data.subarray(at);
  }

  #startPart(headers: string): void {
    const disposition = /^content-disposition:([^\r\n]*)/im.exec(headers)?.[1] ?? '';
    const hasFilename = /;\s*filename\*?\s*=/i.test(disposition);
    const name =
      /;\s*name\s*=\s*(?:"([^"]*)"|([^;\s]*))/i
        .exec(disposition)
        ?.slice(1)
        .find((v) => v !== undefined) ?? '';
    this.#field = Buffer.from(name, 'latin1').toString('utf8'); // the header's bytes are UTF-8, as busboy reads them
    this.#fieldBytes = 0;
    this.#state = hasFilename ? 'file' : 'field';
  }

  /** Counts a field's bytes; past the limit, reports it and ends the watch. */
  #tooLong(bytes: number): boolean {
    this.#fieldBytes += bytes;
    if (this.#fieldBytes <= this.#maxFieldBytes) return false;
    this.#state = 'done';
    this.#onTooLong(this.#field);
    return true;
  }
}

/** The boundary of a multipart/form-data Content-Type, or undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/form-data\s*;/i.test(contentType)) return undefined;
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  return boundary && boundary.length <= 70 ? boundary : undefined;
}
