// Structured logs (pino, one JSON object a line on stdout) and the request log: every request gets an id
// (the caller's X-Request-Id when it sends a sane one, else a new UUID), echoed in the response's
// X-Request-Id and carried by every line logged for that request. Pipe into `npx pino-pretty` to read by eye.
import { randomUUID } from 'node:crypto';

import { pino, type Logger } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';

import type { LogLevel } from './config.js';

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

const SANE_REQUEST_ID = /^[\w.:@-]{1,128}$/;

export function requestLogger(logger: Logger): HttpLogger {
  return pinoHttp({
    logger,
    genReqId(req, res) {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel(_req, res, err) {
      // A client that went away (499, or pino-http's 'aborted' for a response never finished) is no failure of ours.
      if (res.statusCode === 499 || (err && /^(request )?aborted$/i.test(err.message))) return 'info';
      // 503 (queue full, waited too long) is the service shedding load as designed, not a failure.
      if (err || (res.statusCode >= 500 && res.statusCode !== 503)) return 'error';
      return res.statusCode >= 400 ? 'warn' : 'info';
    },
    // What a route or the error handler put in res.locals.log (/predict's cache_hit, a 4xx's detail) joins
    // the request's one log line.
    customSuccessObject: (_req, res, value) => ({ ...value, ...locals(res) }),
    customErrorObject: (_req, res, _err, value) => ({ ...value, ...locals(res) }),
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}

function locals(res: unknown): object | undefined {
  return (res as { locals?: { log?: object } }).locals?.log;
}
