// The watch over a form's fields (src/server/form-field-watch.ts): it follows real multipart bodies however they
// are cut into chunks, reports a field the moment it passes the limit, never counts a file, and gives up (reports
// nothing) on a body it cannot follow. The service's answer to such a field: uploads.test.ts.
import { describe, expect, it } from 'vitest';

import { multipartBody } from '../../scripts/lib/multipart.js';
import { FormFieldWatch, multipartBoundary } from '../../src/server/form-field-watch.js';

const LIMIT = 100;

/** Feeds `body` to a new watch in the chunks `cuts` makes; the fields reported, and the byte at which each was. */
function watch(body: Buffer, contentType: string, cuts: number[], limit = LIMIT): { reports: { field: string; at: number }[]; watching: boolean } {
  const reports: { field: string; at: number }[] = [];
  let fed = 0;
  const w = new FormFieldWatch(multipartBoundary(contentType) as string, limit, (field) => reports.push({ field, at: fed }));
  let from = 0;
  for (const to of [...cuts, body.length]) {
    fed = to;
    w.push(body.subarray(from, to));
    from = to;
  }
  return { reports, watching: w.watching };
}

/** Every way of cutting a body into two chunks, and into chunks of 1, 2, 3, 7 and 64 bytes. */
function cuttings(length: number): number[][] {
  const all: number[][] = [];
  for (let i = 1; i < length; i++) all.push([i]);
  for (const size of [1, 2, 3, 7, 64]) all.push(Array.from({ length: Math.ceil(length / size) - 1 }, (_, i) => (i + 1) * size));
  return all;
}

const image = Buffer.alloc(3000, 0xff); // a file far over the field limit: never counted

describe('FormFieldWatch', () => {
  it('a text of exactly the limit, after a file and with a file after it: nothing to report, however it arrives', () => {
    const { body, contentType } = multipartBody(image, 'x'.repeat(LIMIT));
    for (const cuts of cuttings(body.length)) {
      const { reports, watching } = watch(body, contentType, cuts);
      expect(reports, `cut at ${cuts.slice(0, 3)}...`).toEqual([]);
      expect(watching, 'the body was followed to its end (it ends with "--")').toBe(false);
    }
  });

  it('a text one byte over the limit: reported with its name, by the time the delimiter after it could have been seen', () => {
    const { body, contentType } = multipartBody(image, 'y'.repeat(LIMIT + 1));
    const valueStart = body.indexOf('\r\n\r\nyyy') + 4;
    const boundary = multipartBoundary(contentType) as string;
    for (const cuts of cuttings(body.length)) {
      const { reports } = watch(body, contentType, cuts);
      expect(reports.map((r) => r.field)).toEqual(['text']);
      // A chunk's last bytes that could begin the delimiter wait for the next: the report comes at most that late.
      expect(reports[0]!.at).toBeLessThanOrEqual(valueStart + LIMIT + 1 + `\r\n--${boundary}`.length + 64);
      expect(reports[0]!.at).toBeGreaterThan(valueStart + LIMIT);
    }
  });

  it('a megabyte of text is reported within its first bytes past the limit', () => {
    const { body, contentType } = multipartBody(image, 'z'.repeat(1024 * 1024));
    const { reports } = watch(
      body,
      contentType,
      Array.from({ length: Math.floor(body.length / 65536) }, (_, i) => (i + 1) * 65536),
      64 * 1024,
    );
    expect(reports).toEqual([{ field: 'text', at: 131072 }]); // the second 64 KiB chunk holds the 65,537th byte
  });

  it('text that looks like the start of a delimiter is counted as text', () => {
    const { contentType } = multipartBody(undefined, '');
    const boundary = multipartBoundary(contentType) as string;
    const almost = `\r\n--${boundary.slice(0, -1)}`; // all of the delimiter but its last character
    const fits = multipartBody(undefined, 'a'.repeat(LIMIT - almost.length) + almost);
    const over = multipartBody(undefined, `a${'a'.repeat(LIMIT - almost.length)}${almost}`);
    for (const cuts of cuttings(fits.body.length)) {
      expect(watch(fits.body, fits.contentType, cuts).reports).toEqual([]);
      expect(watch(over.body, over.contentType, cuts).reports.map((r) => r.field)).toEqual(['text']);
    }
  });

  it('names another field that is too long, in UTF-8, with a quoted or a bare name', () => {
    const boundary = 'b0undary';
    const body = (disposition: string) =>
      Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n${'v'.repeat(LIMIT + 1)}\r\n--${boundary}--\r\n`);
    const type = `multipart/form-data; boundary=${boundary}`;
    expect(watch(body('form-data; name="caption"'), type, []).reports).toEqual([{ field: 'caption', at: expect.any(Number) }]);
    expect(watch(body('form-data; name=note'), type, []).reports.map((r) => r.field)).toEqual(['note']);
    expect(watch(Buffer.from(body('form-data; name="légende"').toString('utf8'), 'utf8'), type, []).reports.map((r) => r.field)).toEqual(['légende']);
    expect(watch(body('form-data; name="image"; filename="a.jpg"'), type, []).reports, 'a file is not a field').toEqual([]);
  });

  it('gives up, reporting nothing, on a body it cannot follow', () => {
    const type = 'multipart/form-data; boundary=x';
    const hugeHeaders = Buffer.from(`--x\r\nContent-Disposition: form-data; name="text"\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n${'v'.repeat(LIMIT + 1)}`);
    const giveUp = watch(hugeHeaders, type, [1000, 2000]);
    expect(giveUp).toEqual({ reports: [], watching: false });
    const notAPart = Buffer.from(`--xjunk\r\n${'v'.repeat(LIMIT + 1)}`);
    expect(watch(notAPart, type, [])).toEqual({ reports: [], watching: false });
  });
});

describe('multipartBoundary', () => {
  it.each([
    ['multipart/form-data; boundary=abc', 'abc'],
    ['multipart/form-data; boundary="a b;c"', 'a b;c'],
    ['Multipart/Form-Data ; charset=utf-8; Boundary=xyz', 'xyz'],
    ['multipart/form-data', undefined],
    ['application/json', undefined],
    [`multipart/form-data; boundary=${'b'.repeat(71)}`, undefined],
    [undefined, undefined],
  ])('%s: %s', (contentType, boundary) => {
    expect(multipartBoundary(contentType)).toBe(boundary);
  });
});
