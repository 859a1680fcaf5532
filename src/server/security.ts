// Who may call the service, and from where.
//
//   API keys    API_KEYS on: every endpoint but /health and the pages (the web page, /docs, /openapi.json) needs
//               `Authorization: Bearer <key>` or `X-API-Key: <key>`; 401 with WWW-Authenticate otherwise.
//               ADMIN_API_KEYS: only these may POST /reload_model (401 without a key, 403 with another one).
//               Each route puts its guard (accessGuards) in front of its handler, so the decision belongs to
//               the route that runs; routers are strict about case and trailing slashes (routes/router.ts).
//               Keys are compared in constant time and never logged.
//   No keys     (the default, for a service on loopback): Host headers outside ALLOWED_HOSTS are refused (a web
//               page a user opens could otherwise reach the service under its own name: DNS rebinding), and so
//               are state-changing requests from another origin (Origin / Sec-Fetch-Site: a page could
//               otherwise POST /reload_model with a simple form). /health answers anyone.
import { createHash, timingSafeEqual } from 'node:crypto';

import type { Request, RequestHandler } from 'express';

import { HttpError } from './errors.js';
import { hostNotAllowed, INVALID_API_KEY, NOT_AN_ADMIN_KEY, NOT_AUTHENTICATED } from './messages.js';

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

/**
 * Who may run a route, as guards that the routes put in front of their handlers: authorisation is decided by
 * the route that will run, never by a string of the path (Express also routes /RELOAD_MODEL or /reload_model/
 * to a route of another spelling unless its router is strict; see routes/router.ts).
 */
export interface AccessGuards {
  /** With API_KEYS: any valid key (user or admin). Without: anyone. */
  user: RequestHandler;
  /** With ADMIN_API_KEYS: an admin key (401 without a valid key, 403 with a user key). Without: as `user`. */
  admin: RequestHandler;
  /**
   * The valid key a request carries, as its rate-limit identity (a SHA-256 prefix, never the key), or
   * undefined: no key, or a wrong one, which count against the client's address like a request without one.
   */
  keyIdentity(req: Request): string | undefined;
}

export function accessGuards({ apiKeys, adminApiKeys }: SecurityOptions): AccessGuards {
  const all = [...apiKeys, ...adminApiKeys].map(digest);
  const admins = adminApiKeys.map(digest);
  /** The request's key if it is one of `keys`; an HttpError (401) if it has none or a wrong one. */
  const check = (req: Request): Buffer | HttpError => {
    const key = requestKey(req.headers);
    if (key === undefined) return unauthorized(NOT_AUTHENTICATED, false);
    const given = digest(key);
    return matches(given, all) ? given : unauthorized(INVALID_API_KEY, true);
  };
  const user: RequestHandler = (req, _res, next) => {
    if (apiKeys.length === 0) return next();
    const given = check(req);
    next(given instanceof HttpError ? given : undefined);
  };
  const admin: RequestHandler = (req, res, next) => {
    if (admins.length === 0) return user(req, res, next);
    const given = check(req);
    if (given instanceof HttpError) return next(given);
    next(matches(given, admins) ? undefined : new HttpError(403, NOT_AN_ADMIN_KEY));
  };
  const keyIdentity = (req: Request): string | undefined => {
    if (all.length === 0) return undefined;
    const key = requestKey(req.headers);
    if (key === undefined) return undefined;
    const given = digest(key);
    return matches(given, all) ? given.toString('hex').slice(0, 32) : undefined;
  };
  return { user, admin, keyIdentity };
}

/**
 * A request with two Host headers is refused (400): Node keeps the first, a proxy in front may have used the
 * other, and the Host check below must judge the one that counts.
 */
export const singleHostHeader: RequestHandler = (req, _res, next) => {
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].toLowerCase() === 'host') hosts++;
  next(hosts > 1 ? new HttpError(400, 'The request has more than one Host header') : undefined);
};

/** The host name of a Host or Origin value, lower case, without port or IPv6 brackets. */
export function hostName(value: string): string {
  const host = value.trim().toLowerCase();
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/**
 * Without API keys: Host headers outside ALLOWED_HOSTS, and state-changing requests from another origin, get
 * 403 (/health excepted, for probes that reach the service by its address). ADMIN_API_KEYS alone does not turn
 * them off: every route but the reload is still open to whoever reaches the service, a web page included.
 */
export function originChecks({ apiKeys, allowedHosts }: SecurityOptions): RequestHandler {
  const anyHost = allowedHosts.includes('*');
  return (req, _res, next) => {
    if (apiKeys.length > 0 || req.path === '/health') return next();
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
