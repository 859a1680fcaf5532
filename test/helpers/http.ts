// HTTP helpers for the service's tests beyond server.ts: the workshop's answers checked field by field, a
// multipart body as curl -F sends it, an upload sent in parts when the test says, a form sent chunked, a raw
// keep-alive GET.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import { expect } from 'vitest';

import { DEFAULT_MODEL_DIR, getJson } from './server.js';

/** The default model's classes, in index order. */
export const DEFAULT_CLASSES = Object.entries(JSON.parse(readFileSync(path.join(DEFAULT_MODEL_DIR, 'class_mapping.json'), 'utf8')) as Record<string, number>)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

export async function reload(url: string): Promise<{ status: number; body: any }> {
  return getJson(url, '/reload_model', { method: 'POST' });
}

export async function status(url: string): Promise<any> {
  const res = await getJson(url, '/system_status');
  expect(res.status).toBe(200);
  return res.body;
}

/** The workshop's /predict body, checked field by field, for a model of `classes`. */
export function expectPredictionBody(body: any, classes: readonly string[] = DEFAULT_CLASSES): void {
  expect(Object.keys(body).sort()).toEqual(['cache_hit', 'predictions']);
  expect(typeof body.cache_hit).toBe('boolean');
  expect(body.predictions).toHaveLength(Math.min(5, classes.length));
  let previous = Infinity;
  let sum = 0;
  for (const p of body.predictions) {
    expect(Object.keys(p).sort()).toEqual(['class_name', 'confidence', 'probability']);
    expect(classes.map((c) => c.replaceAll('_', ' '))).toContain(p.class_name);
    expect(p.probability).toBeGreaterThanOrEqual(0);
    expect(p.probability).toBeLessThanOrEqual(previous);
    expect(p.confidence).toBe(`${(p.probability * 100).toFixed(2)}%`);
    previous = p.probability;
    sum += p.probability;
  }
  if (classes.length <= 5) expect(sum).toBeCloseTo(1, 6);
}

/** Two answers of the same model to the same image and text: the same classes in the same order, the same probabilities. */
export function expectSameAnswer(a: any[], b: any[]): void {
  expect(b.map((p) => p.class_name)).toEqual(a.map((p) => p.class_name));
  b.forEach((p, i) => {
    expect(p.probability).toBeCloseTo(a[i].probability, 5);
  });
}

/** A multipart body as curl -F sends it: `text`, then `image` (a JPEG). */
export function multipart(image: Buffer, text: string): { body: Buffer; contentType: string } {
  const boundary = `----lifecycle${Math.random().toString(16).slice(2)}`;
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n${text}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  return {
    body: Buffer.concat([Buffer.from(head), image, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** fetch's options to POST `form` chunked, in pieces of 64 KiB without a Content-Length, as a streaming client does. */
export async function chunkedPost(form: FormData): Promise<RequestInit> {
  const encoded = new Request('http://localhost/', { method: 'POST', body: form });
  const whole = Buffer.from(await encoded.arrayBuffer());
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= whole.length) {
        controller.close();
        return;
      }
      const end = offset + 65536;
      controller.enqueue(whole.subarray(offset, end));
      offset = end;
    },
  });
  // duplex: Node's fetch needs it for a stream body (not yet in TypeScript's RequestInit)
  return { method: 'POST', body, headers: { 'content-type': encoded.headers.get('content-type') ?? '' }, duplex: 'half' } as RequestInit;
}

export interface StalledUpload {
  /** Resolves once the server has read the request's head and answered `100 Continue`: the request is in flight. */
  started: Promise<void>;
  /** Sends the first half of the body (after `started`). */
  sendHalf(): void;
  /** Sends the rest. */
  finish(): void;
  /** The answer, or the error that ended the connection. */
  response: Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }>;
}

/**
 * A POST /predict whose body is sent in parts, when the test says: with `Expect: 100-continue`, Node's server
 * answers `100 Continue` when it dispatches the request, so the test knows for sure that it is in flight.
 */
export function stalledUpload(url: string, image: Buffer, text: string): StalledUpload {
  const { body, contentType } = multipart(image, text);
  const half = Math.floor(body.length / 2);
  const { hostname, port } = new URL(url);
  const req = http.request({
    host: hostname,
    port,
    method: 'POST',
    path: '/predict',
    agent: false,
    headers: { 'Content-Type': contentType, 'Content-Length': body.length, Expect: '100-continue' },
  });
  const started = new Promise<void>((resolve) => req.once('continue', resolve));
  const response = new Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.once('error', reject);
      res.once('end', () => {
        try {
          resolve({ status: res.statusCode!, body: JSON.parse(text), headers: res.headers });
        } catch (err) {
          reject(err as Error);
        }
      });
    });
  });
  // Unhandled until a test awaits it: a test that expects an error must not leave an unhandled rejection.
  response.catch(() => undefined);
  req.flushHeaders();
  return {
    started,
    sendHalf: () => req.write(body.subarray(0, half)),
    finish: () => req.end(body.subarray(half)),
    response,
  };
}

/**
 * One request over a raw TCP connection, as HTTP/1.1 keep-alive clients send it: resolves with the response's
 * head (lower-cased header names) once its body has arrived, and the socket, left open.
 */
export function rawGet(
  url: string,
  pathname: string,
): Promise<{ statusLine: string; headers: Record<string, string>; socket: net.Socket; closed: Promise<void> }> {
  const { hostname, port, host } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    let data = '';
    socket.setEncoding('utf8');
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`));
    socket.on('data', function onData(chunk: string) {
      data += chunk;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      if (data.length - end - 4 < Number(headers['content-length'] ?? 0)) return;
      socket.off('data', onData);
      resolve({ statusLine, headers, socket, closed });
    });
  });
}
