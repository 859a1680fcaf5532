// Who may call the service and from where, against real servers: API keys and admin keys, the Host and
// Origin checks without keys, rate limits, security headers, Swagger UI's files only, HTTPS.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { multipartBody } from '../helpers/http.js';
import { rawExchange, rawFirstLine, rawFlood, rawGet, rawRequest } from '../helpers/raw-http.js';
import { getJson, logsSoFar, predict, type TestServer, useServers } from '../helpers/server.js';

const KEY = 'user-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef';

const server = useServers();

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 120, b: 40 } } })
    .jpeg()
    .toBuffer();
});

const withKey = (key: string, how: 'bearer' | 'header' = 'bearer'): Record<string, string> =>
  how === 'bearer' ? { Authorization: `Bearer ${key}` } : { 'X-API-Key': key };

describe('API keys', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await server({ API_KEYS: KEY, ADMIN_API_KEYS: ADMIN });
  });

  it('/health and the pages answer anyone; every other endpoint wants a key: 401 with WWW-Authenticate', async () => {
    for (const p of ['/health', '/', '/docs', '/openapi.json', '/docs/assets/swagger-ui.css', '/app.js']) {
      expect((await rawRequest(s.url, { path: p })).status, p).toBe(200);
    }
    for (const p of ['/classes', '/system_status', '/metrics']) {
      const res = await rawRequest(s.url, { path: p });
      expect(res.status, p).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(res.body)).toEqual({ detail: 'Not authenticated: send an API key (Authorization: Bearer <key>, or X-API-Key: <key>)' });
    }
    const none = await predict(s.url, jpeg, 'Image of food');
    expect(none.status).toBe(401);
    const wrong = await rawRequest(s.url, { path: '/classes', headers: withKey('not-the-key-0123456789') });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(JSON.parse(wrong.body)).toEqual({ detail: 'Invalid API key' });
  });

  it('a key in Authorization: Bearer or in X-API-Key opens them; an admin key too', async () => {
    for (const headers of [withKey(KEY), withKey(KEY, 'header'), withKey(ADMIN)]) {
      expect((await rawRequest(s.url, { path: '/classes', headers })).status).toBe(200);
    }
    const form = new FormData();
    form.append('image', new Blob([jpeg]), 'photo.jpg');
    const res = await fetch(`${s.url}/predict`, { method: 'POST', body: form, headers: withKey(KEY, 'header') });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { predictions: unknown[] }).predictions).toHaveLength(3);
  });

  it('only ADMIN_API_KEYS may reload: 401 without a key, 403 with another one, 200 with an admin key', async () => {
    expect((await rawRequest(s.url, { method: 'POST', path: '/reload_model' })).status).toBe(401);
    const user = await rawRequest(s.url, { method: 'POST', path: '/reload_model', headers: withKey(KEY) });
    expect(user.status).toBe(403);
    expect(JSON.parse(user.body)).toEqual({ detail: 'This API key may not reload the model: only ADMIN_API_KEYS may' });
    const admin = await rawRequest(s.url, { method: 'POST', path: '/reload_model', headers: withKey(ADMIN) });
    expect(admin.status).toBe(200);
  });

  it('never logs a key; the OpenAPI document offers both schemes to Swagger UI', async () => {
    // every line logged so far, the requests' above included
    const logs = JSON.stringify(await logsSoFar(s, withKey(KEY)));
    expect(logs).not.toContain(KEY);
    expect(logs).not.toContain(ADMIN);
    const doc = JSON.parse((await rawRequest(s.url, { path: '/openapi.json' })).body);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer']);
    expect(doc.paths['/predict'].post.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(doc.paths['/health'].get.security).toBeUndefined();
    expect(Object.keys(doc.paths['/predict'].post.responses)).toContain('401');
  });
});

describe('without keys', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await server();
  });

  it('answers only Host headers in ALLOWED_HOSTS (DNS rebinding), except /health', async () => {
    const port = new URL(s.url).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      expect((await rawRequest(s.url, { path: '/classes', headers: { Host: host } })).status, host).toBe(200);
    }
    const evil = await rawRequest(s.url, { path: '/classes', headers: { Host: `attacker.example:${port}` } });
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body).detail).toBe(`Host 'attacker.example:${port}' is not allowed (ALLOWED_HOSTS, or set API_KEYS)`);
    expect((await rawRequest(s.url, { path: '/health', headers: { Host: 'attacker.example' } })).status).toBe(200);
  });

  it('refuses state-changing requests from another origin (a page could reload the model with a form)', async () => {
    const host = new URL(s.url).host;
    const cases: [Record<string, string>, number][] = [
      [{ Origin: 'http://attacker.example' }, 403],
      [{ 'Sec-Fetch-Site': 'cross-site' }, 403],
      [{ 'Sec-Fetch-Site': 'same-site' }, 403],
      [{ Origin: 'null' }, 403],
      [{ Origin: `http://${host}`, 'Sec-Fetch-Site': 'same-origin' }, 200],
      [{}, 200], // curl and other clients send neither
    ];
    for (const [headers, status] of cases) {
      const res = await rawRequest(s.url, { method: 'POST', path: '/reload_model', headers });
      expect(res.status, JSON.stringify(headers)).toBe(status);
      if (status === 403) expect(JSON.parse(res.body).detail).toMatch(/^Cross-origin requests may not change anything here/);
    }
    // reading is not changing: a cross-origin GET is answered (the browser keeps the answer from the page)
    expect((await rawRequest(s.url, { path: '/classes', headers: { Origin: 'http://attacker.example' } })).status).toBe(200);
  });

  it('ALLOWED_HOSTS=* answers any Host', async () => {
    const any = await server({ ALLOWED_HOSTS: '*' });
    expect((await rawRequest(any.url, { path: '/classes', headers: { Host: 'anything.example' } })).status).toBe(200);
  });

  it("security headers on every answer; only Swagger UI's own files under /docs/assets", async () => {
    const page = await rawRequest(s.url, { path: '/' });
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['content-security-policy']).toContain("img-src 'self' data: blob:");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect((await rawRequest(s.url, { path: '/health' })).headers['x-content-type-options']).toBe('nosniff');
    for (const file of ['swagger-ui.css', 'swagger-ui-bundle.js', 'favicon-32x32.png']) {
      expect((await rawRequest(s.url, { path: `/docs/assets/${file}` })).status, file).toBe(200);
    }
    for (const file of ['package.json', 'index.html', 'swagger-ui-bundle.js.map', 'swagger-initializer.js', '../package.json']) {
      expect((await rawRequest(s.url, { path: `/docs/assets/${file}` })).status, file).toBe(404);
    }
  });
});

describe('routing is exact, and each route checks its own key', () => {
  const spellings = ['/RELOAD_MODEL', '/Reload_Model', '/reload_model/', '/reload_model//'];

  it('ADMIN_API_KEYS: no other spelling of /reload_model reaches the reload (404, not 200)', async () => {
    const s = await server({ ADMIN_API_KEYS: ADMIN });
    expect((await rawRequest(s.url, { method: 'POST', path: '/reload_model' })).status).toBe(401);
    for (const p of spellings) expect((await rawRequest(s.url, { method: 'POST', path: p })).status, p).toBe(404);
    expect((await rawRequest(s.url, { method: 'POST', path: '/reload_model', headers: withKey(ADMIN) })).status).toBe(200);
  });

  it('API_KEYS and ADMIN_API_KEYS: a user key reloads through no spelling; HEAD /health answers without a key', async () => {
    const s = await server({ API_KEYS: KEY, ADMIN_API_KEYS: ADMIN });
    expect((await rawRequest(s.url, { method: 'POST', path: '/reload_model', headers: withKey(KEY) })).status).toBe(403);
    for (const p of spellings) {
      expect((await rawRequest(s.url, { method: 'POST', path: p, headers: withKey(KEY) })).status, p).toBe(404);
    }
    for (const p of ['/CLASSES', '/classes/', '/Health']) expect((await rawRequest(s.url, { path: p, headers: withKey(KEY) })).status, p).toBe(404);
    const head = await rawRequest(s.url, { method: 'HEAD', path: '/health' });
    expect(head.status).toBe(200);
    expect((await rawRequest(s.url, { method: 'HEAD', path: '/classes' })).status).toBe(401);
    expect((await rawRequest(s.url, { method: 'HEAD', path: '/classes', headers: withKey(KEY) })).status).toBe(200);
  });

  it('ADMIN_API_KEYS alone keeps the Host and Origin checks: the other routes are open to anyone', async () => {
    const s = await server({ ADMIN_API_KEYS: ADMIN });
    const port = new URL(s.url).port;
    expect((await rawRequest(s.url, { path: '/classes', headers: { Host: `attacker.example:${port}` } })).status).toBe(403);
    const form = multipartBody(jpeg, 'Image of food');
    const crossSite = await rawRequest(s.url, {
      method: 'POST',
      path: '/predict',
      headers: { 'Content-Type': form.contentType, Origin: 'http://attacker.example' },
      body: form.body,
    });
    expect(crossSite.status).toBe(403);
  });
});

describe('requests the service does not read', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await server();
  });

  it('a body sent to an unknown path or with a wrong method is not read: the answer, then the connection closes', async () => {
    const total = 256 * 1024 * 1024;
    const host = new URL(s.url).host;
    for (const [method, p, status] of [
      ['POST', '/nowhere', '404'],
      ['PUT', '/predict', '405'],
      ['POST', '/health', '405'],
    ] as const) {
      const r = await rawFlood(s.url, `${method} ${p} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${total}\r\n\r\n`, total);
      expect(r.statusLine, `${method} ${p}`).toBe(`HTTP/1.1 ${status} ${status === '404' ? 'Not Found' : 'Method Not Allowed'}`);
      // nothing is read after the answer: the client gets as far as the kernel's buffers take (a few MiB)
      expect(r.closed, `${method} ${p}`).toBe(true);
      expect(r.sent, `${method} ${p}`).toBeLessThan(32 * 1024 * 1024);
    }
    const chunked = await rawFlood(s.url, `POST /nowhere HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n`, total);
    expect(chunked.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(chunked.closed).toBe(true);
  });

  it("Expect: 100-continue over the upload bound gets the 413 without '100 Continue'; within it, 100 first; other paths: no 100", async () => {
    const { host } = new URL(s.url);
    const firstLine = (length: number, target = 'POST /predict'): Promise<string> =>
      rawFirstLine(
        s.url,
        `${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`,
      );
    expect(await firstLine(500 * 1024 * 1024)).toBe('HTTP/1.1 413 Payload Too Large');
    expect(await firstLine(1000)).toBe('HTTP/1.1 100 Continue');
    // no other route reads a body: answered without being sent one
    expect(await firstLine(1000, 'POST /nowhere')).toBe('HTTP/1.1 404 Not Found');
    expect(await firstLine(1000, 'POST /reload_model')).toBe('HTTP/1.1 200 OK');
  });

  it('two Host headers: 400; a path that would redirect to another host: no redirect', async () => {
    const { host } = new URL(s.url);
    const twoHosts = await rawExchange(s.url, `GET /classes HTTP/1.1\r\nHost: ${host}\r\nHost: attacker.example\r\nConnection: close\r\n\r\n`);
    expect(twoHosts.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(twoHosts.slice(twoHosts.indexOf('\r\n\r\n') + 4))).toEqual({ detail: 'The request has more than one Host header' });
    for (const p of ['/\\evil.example/%2e%2e', '/%5Cevil.example/%2e%2e', '/\\evil.example/']) {
      const answer = await rawGet(s.url, p);
      answer.socket.destroy();
      expect(answer.statusLine, p).not.toMatch(/^HTTP\/1\.1 3/);
      expect(answer.headers.location, p).toBeUndefined();
    }
  });
});

describe('RATE_LIMIT', () => {
  it('past the limit: 429 with RateLimit headers and Retry-After; /health never counts', async () => {
    const s = await server({ RATE_LIMIT: '3' });
    for (let i = 0; i < 10; i++) expect((await rawRequest(s.url, { path: '/health' })).status).toBe(200);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await rawRequest(s.url, { path: '/classes' }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    expect(answers[0].headers['ratelimit-policy']).toMatch(/^"3-in-1min"; q=3; w=60/);
    expect(answers[0].headers.ratelimit).toMatch(/; r=2; t=\d+$/);
    const limited = answers[3];
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(limited.body)).toEqual({ detail: 'Too many requests: the limit is 3 a minute (RATE_LIMIT); try again later' });
    // a key counts for itself, not for the address
    const keyed = await server({ RATE_LIMIT: '1', API_KEYS: `${KEY},${ADMIN}` });
    expect((await rawRequest(keyed.url, { path: '/classes', headers: withKey(KEY) })).status).toBe(200);
    expect((await rawRequest(keyed.url, { path: '/classes', headers: withKey(KEY) })).status).toBe(429);
    expect((await rawRequest(keyed.url, { path: '/classes', headers: withKey(ADMIN) })).status).toBe(200);
  });

  it('wrong keys count against the address: trying keys is throttled', async () => {
    const s = await server({ RATE_LIMIT: '3', API_KEYS: KEY });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await rawRequest(s.url, { path: '/classes', headers: withKey(`wrong-key-${i}-0123456789abcdef`) })).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    // a valid key has its own counter
    expect((await rawRequest(s.url, { path: '/classes', headers: withKey(KEY) })).status).toBe(200);
  });

  it('TRUST_PROXY: X-Forwarded-For names the client only when it is an address', async () => {
    const s = await server({ RATE_LIMIT: '2', TRUST_PROXY: 'loopback' });
    const from = (xff: string) => rawRequest(s.url, { path: '/classes', headers: { 'X-Forwarded-For': xff } });
    // made-up values are no address: they all count as the connection's own
    expect([(await from('garbage1')).status, (await from('garbage2')).status, (await from('garbage3')).status]).toEqual([200, 200, 429]);
    // an address behind the trusted proxy has its own counter (nginx appends the client it saw)
    expect([(await from('203.0.113.5')).status, (await from('198.51.100.1, 203.0.113.5')).status, (await from('203.0.113.5')).status]).toEqual([200, 200, 429]);
    expect((await from('203.0.113.6')).status).toBe(200);
  });
});

describe('HTTPS', () => {
  it('TLS_CERT and TLS_KEY: the service speaks HTTPS itself', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tls-'));
    const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
      stdio: 'ignore',
    });
    const s = await server({ TLS_CERT: cert, TLS_KEY: key });
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await rawRequest(s.url, { path: '/health' });
    expect(res.status).toBe(200);
    expect(res.headers['strict-transport-security']).toMatch(/^max-age=/);
    expect(JSON.parse(res.body)).toEqual({ status: 'healthy', device: 'cpu' });
    expect((await getJson(s.url.replace('https', 'http'), '/health').catch(() => null))?.status ?? 0).not.toBe(200);
  });
});
