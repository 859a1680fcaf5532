// Who may call the service, and from where.
//
//   API keys    API_KEYS on: every endpoint but /health and the pages (the web page, /docs, /openapi.json) needs
//               `Authorization: Bearer <key>` or `X-API-Key: <key>`; 401 with WWW-Authenticate otherwise.
//               ADMIN_API_KEYS: only these may POST /reload_model (401 without a key, 403 with another one).
//               Keys are compared in constant time and never logged.
//   No keys     (the default, for a service on loopback): Host headers outside ALLOWED_HOSTS are refused (a web
//               page a user opens could otherwise reach the service under its own name: DNS rebinding), and so
//               are state-changing requests from another origin (Origin / Sec-Fetch-Site: a page could
//               otherwise POST /reload_model with a simple form). /health answers anyone.
import { createHash, timingSafeEqual } from 'node:crypto';

import type { RequestHandler } from 'express';

import { HttpError } from './errors.js';
import { hostNotAllowed, INVALID_API_KEY, NOT_AN_ADMIN_KEY, NOT_AUTHENTICATED } from './messages.js';

/** Paths anyone may GET: liveness, and the pages a browser must load before it can ask for a key. */
const PUBLIC_PATHS = /^\/(health|openapi\.json|docs(\/.*)?|index\.html|app\.js|style\.css|favicon\.ico)?$/;

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface SecurityOptions {
  apiKeys: readonly string[];
  adminApiKeys: readonly string[];
  allowedHosts: readonly string[];
}

const digest = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/** Whether `given` is one of `keys`, without an early exit: the time taken says nothing of which or how close. */
function matches(given: Buffer, keys: readonly Buffer[]): boolean {
  let found = false;
  for (const key of keys) found = timingSafeEqual(given, key) || found;
  return found;
}

/** The key a request carries: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function requestKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (bearer) return bearer[1];
  }
  const header = headers['x-api-key'];
  return typeof header === 'string' && header.trim() !== '' ? header.trim() : undefined;
}

function unauthorized(detail: string, invalid: boolean): HttpError {
  const challenge = invalid ? 'Bearer error="invalid_token"' : 'Bearer';
  return new HttpError(401, detail, { headers: { 'WWW-Authenticate': challenge } });
}

/** API keys; a no-op without any. */
export function authentication({ apiKeys, adminApiKeys }: SecurityOptions): RequestHandler {
  const all = [...apiKeys, ...adminApiKeys].map(digest);
  const admins = adminApiKeys.map(digest);
  return (req, _res, next) => {
    const reload = req.path === '/reload_model';
    // Without API_KEYS, only a reload may need a key (ADMIN_API_KEYS); the rest is open.
    const needsKey = apiKeys.length > 0 ? !(req.method === 'GET' && PUBLIC_PATHS.test(req.path)) : reload && admins.length > 0;
    if (!needsKey) return next();
    const key = requestKey(req.headers);
    if (key === undefined) return next(unauthorized(NOT_AUTHENTICATED, false));
    const given = digest(key);
    if (!matches(given, all)) return next(unauthorized(INVALID_API_KEY, true));
    if (reload && admins.length > 0 && !matches(given, admins)) {
      return next(new HttpError(403, NOT_AN_ADMIN_KEY));
    }
    next();
  };
}

/** The host name of a Host or Origin value, lower case, without port or IPv6 brackets. */
export function hostName(value: string): string {
  const host = value.trim().toLowerCase();
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/**
 * Without API keys: Host headers outside ALLOWED_HOSTS, and state-changing requests from another origin, get
 * 403 (/health excepted, for probes that reach the service by its address).
 */
export function originChecks({ apiKeys, adminApiKeys, allowedHosts }: SecurityOptions): RequestHandler {
  const anyHost = allowedHosts.includes('*');
  return (req, _res, next) => {
    if (apiKeys.length > 0 || adminApiKeys.length > 0 || req.path === '/health') return next();
    const host = req.headers.host ?? '';
    if (!anyHost && !allowedHosts.includes(hostName(host))) {
      return next(new HttpError(403, hostNotAllowed(host)));
    }
    if (STATE_CHANGING.has(req.method)) {
      const site = req.headers['sec-fetch-site'];
      const origin = req.headers.origin;
      // Browsers send Sec-Fetch-Site; older ones only Origin. curl and other clients send neither.
      const crossSite = typeof site === 'string' && site !== 'same-origin' && site !== 'none';
      let crossOrigin = false;
      if (typeof origin === 'string' && origin !== 'null') {
        try {
          crossOrigin = new URL(origin).host.toLowerCase() !== host.toLowerCase();
        } catch {
          crossOrigin = true;
        }
      } else if (origin === 'null') {
        crossOrigin = true;
      }
      if (crossSite || crossOrigin) {
        return next(new HttpError(403, 'Cross-origin requests may not change anything here (the service accepts same-origin or non-browser clients)'));
      }
    }
    next();
  };
}
