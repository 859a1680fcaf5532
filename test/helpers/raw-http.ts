// The tests' one raw HTTP client: requests that fetch() cannot send or whose bytes and timing the test decides.
//   rawRequest:     any method, headers fetch() refuses (Host, Origin, Sec-Fetch-Site), any body; node:http(s)
//   rawGet:         a keep-alive GET over a raw TCP connection, the socket left open
//   rawUpload:      a head, then body chunks, over a raw TCP connection, until the server answers or closes
//   rawFlood:       a head, then up to N bytes of body, over a raw TCP connection, until the server closes it
//   rawExchange:    bytes sent whole over a raw TCP connection, all that comes back until the server closes
//   rawFirstLine:   a head over a raw TCP connection, the first line of the first bytes that come back
//   rawContinued:   a head with Expect: 100-continue over a raw TCP connection, the socket once 100 Continue came
//   stalledUpload:  a POST /predict whose body is sent in parts, when the test says (Expect: 100-continue)
import http from 'node:http';
import net from 'node:net';

import { multipartBody } from '../../scripts/lib/multipart.js';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RawRequestOptions {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** A connection of its own (no agent: none kept alive from an earlier request). */
  ownConnection?: boolean;
  /** Rejects, saying what did not answer, when no whole answer has come within this time (default: no bound). */
  withinMs?: number;
  /** Runs once the request (head and body) has been sent. */
  onSent?: () => void;
}

/**
 * A request with headers fetch() refuses to set (Host, Origin, Sec-Fetch-Site) or a body of any shape, over
 * node:http (or https, certificates not checked: the tests' own).
 */
export async function rawRequest(url: string, options: RawRequestOptions): Promise<RawAnswer> {
  const target = new URL(options.path, url);
  const method = options.method ?? 'GET';
  const { request } = target.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const agent = options.ownConnection ? { agent: false } : {};
    const req = request(target, { method, headers: options.headers, rejectUnauthorized: false, ...agent } as never, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    if (options.withinMs !== undefined) {
      const withinMs = options.withinMs;
      timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`${method} ${options.path}: no answer within ${withinMs / 1000} s (the connection is held by a process that never answers)`));
      }, withinMs);
    }
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(options.body, () => options.onSent?.());
  });
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

/**
 * Sends `head` on a raw connection, then `body` chunks (until the server answers or closes); what came back once
 * the server has closed the connection, or 30 s after the last chunk (closed: false).
 */
export function rawUpload(url: string, head: string, chunks: () => Buffer | undefined): Promise<{ response: string; sent: number; closed: boolean }> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let response = '';
    let sent = 0;
    let done = false;
    let watchdog: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      socket.destroy();
      resolve({ response, sent, closed });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (response += d));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      socket.write(head);
      for (;;) {
        const chunk = chunks();
        if (!chunk || socket.destroyed || response.length > 0) break;
        sent += chunk.length;
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
      // the answer comes with the close (every case here ends with one); the bound only for a server that never closes
      if (!done) watchdog = setTimeout(() => finish(false), 30_000);
    });
  });
}

/**
 * Sends `head` then up to `bytes` of body in 64 KiB writes over a raw connection, until the server closes it;
 * resolves with the answer's status line and how much of the body the server let through before closing.
 */
export function rawFlood(url: string, head: string, bytes: number): Promise<{ statusLine: string; sent: number; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    let answer = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ statusLine: answer.split('\r\n')[0], sent, closed });
    };
    const pump = (): void => {
      while (!done && !socket.destroyed && sent < bytes) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
      // Everything sent and the connection still open: the server read it all.
      if (sent >= bytes && !done) socket.end();
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(answer !== '' && sent < bytes));
    socket.once('connect', () => {
      socket.write(head);
      pump();
    });
    socket.setTimeout(50_000, () => reject(new Error(`no answer nor close after ${sent} bytes`)));
  });
}

/** Sends `request` (whole, the connection then half-closed) over a raw TCP connection; resolves with all the server sent, once it has closed. */
export function rawExchange(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(request));
    let answer = '';
    socket.setEncoding('latin1').on('data', (d: string) => (answer += d));
    socket.once('close', () => resolve(answer));
    socket.once('error', reject);
  });
}

/** Sends `head` over a raw TCP connection; resolves with the first line of the first bytes the server sends (the connection then destroyed). */
export function rawFirstLine(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(head));
    socket.setEncoding('latin1');
    socket.once('data', (d: string) => {
      socket.destroy();
      resolve(d.split('\r\n')[0]);
    });
    socket.once('error', reject);
  });
}

export interface ContinuedRequest {
  socket: net.Socket;
  /** The bytes the server has sent since its `100 Continue`. */
  received(): Buffer;
  /** Resolves when the connection has closed. */
  closed: Promise<void>;
}

/**
 * Sends `head` (with `Expect: 100-continue`) over a raw TCP connection and resolves once the server has answered
 * `100 Continue`: it has dispatched the request, which is now in flight; the test sends the body, or not, on
 * `socket` (its errors ignored). Rejects if the connection closes before.
 */
export function rawContinued(url: string, head: string): Promise<ContinuedRequest> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let received = Buffer.alloc(0);
  let continued = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (continued || !received.toString('latin1').includes('100 Continue\r\n\r\n')) return;
      continued = true;
      received = Buffer.alloc(0);
      resolve({ socket, received: () => received, closed });
    });
    socket.on('error', () => undefined);
    void closed.then(() => reject(new Error(`the connection closed before 100 Continue; received: ${received.toString('latin1')}`)));
    socket.once('connect', () => socket.write(head));
  });
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
  const { body, contentType } = multipartBody(image, text);
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
