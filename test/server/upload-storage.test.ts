// The upload storage (src/server/upload-storage.ts) in multer, in process, over real HTTP: the bytes kept and
// their SHA-256, with a Content-Length, without one (chunked, the buffer grown), and over the limit.
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

import express from 'express';
import multer from 'multer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hashingMemoryStorage, type StoredUpload } from '../../src/server/upload-storage.js';
import { chunkedPost } from '../helpers/http.js';

const MAX = 3 * 1024 * 1024;
let server: Server;
let url: string;

beforeAll(async () => {
  const app = express();
  const upload = multer({ storage: hashingMemoryStorage(MAX), limits: { fileSize: MAX } });
  app.post('/upload', upload.single('file'), (req, res) => {
    const file = req.file as Express.Multer.File & StoredUpload;
    res.json({
      size: file.size,
      sha256: file.sha256.toString('hex'),
      bytes: createHash('sha256').update(file.buffer).digest('hex'),
    });
  });
  app.use((err: Error & { code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(413).json({ code: err.code });
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function form(bytes: Buffer): FormData {
  const body = new FormData();
  body.append('file', new Blob([bytes]), 'file.bin');
  return body;
}

describe('hashingMemoryStorage', () => {
  it('keeps the file and its SHA-256 when the request has a Content-Length', async () => {
    const bytes = randomBytes(700_000);
    const res = await fetch(url, { method: 'POST', body: form(bytes) });
    expect(res.status).toBe(200);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    expect(await res.json()).toEqual({ size: bytes.length, sha256, bytes: sha256 });
  });

  it('grows its buffer when the request is chunked (no Content-Length)', async () => {
    const bytes = randomBytes(2_500_000); // over the first buffer's 1 MiB
    const res = await fetch(url, await chunkedPost(form(bytes)));
    expect(res.status).toBe(200);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    expect(await res.json()).toEqual({ size: bytes.length, sha256, bytes: sha256 });
  });

  it("leaves a file over the limit to multer's LIMIT_FILE_SIZE", async () => {
    for (const send of ['length', 'chunked'] as const) {
      const bytes = randomBytes(MAX + 1);
      const res = await fetch(url, send === 'length' ? { method: 'POST', body: form(bytes) } : await chunkedPost(form(bytes)));
      expect(res.status).toBe(413);
      expect(await res.json()).toEqual({ code: 'LIMIT_FILE_SIZE' });
    }
  });
});
