// The one multipart/form-data builder of the tests and the benchmarks, for a body whose bytes the caller sends
// itself (a raw connection, an upload sent in parts, a body of a known length); fetch() with a FormData builds
// its own.

/**
 * A multipart/form-data body as curl -F builds it: an `image` file part (when given, type
 * application/octet-stream) and a `text` field (when given), in that order.
 */
export function multipartBody(image: Uint8Array | undefined, text?: string, filename = 'photo.jpg'): { body: Buffer; contentType: string } {
  const boundary = `----torchscript-node-${Math.random().toString(36).slice(2)}`;
  const parts: Buffer[] = [];
  if (image) {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    );
    parts.push(Buffer.from(image), Buffer.from('\r\n'));
  }
  if (text !== undefined) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n${text}\r\n`));
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}
