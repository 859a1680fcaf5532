// The Express app, assembled from its parts: the request log, the routes (one concern a file), the 404 and the
// one error handler. It knows nothing of ports or signals (server.ts does), so tests and scripts can mount it.
import express, { type Express } from 'express';
import helmet from 'helmet';

import type { AppContext } from './app-context.js';
import { errorHandler, notFound } from './errors.js';
import { requestLogger } from './logger.js';
import { rateLimiter } from './rate-limit.js';
import { docsRoutes } from './routes/docs.js';
import { metricsRoutes } from './routes/metrics.js';
import { statusRoutes } from './routes/status.js';
import { predictRoutes } from './routes/predict.js';
import { reloadRoutes } from './routes/reload-model.js';
import { webRoutes } from './routes/web.js';
import { ROUTER_OPTIONS } from './routes/router.js';
import { accessGuards, originChecks, singleHostHeader } from './security.js';
import { closeAfterUnreadBody } from './request-body.js';

export type { AppContext } from './app-context.js';

export function createApp(context: AppContext): Express {
  const app = express();
  app.set('case sensitive routing', ROUTER_OPTIONS.caseSensitive);
  app.set('strict routing', ROUTER_OPTIONS.strict);
  app.disable('x-powered-by');
  app.set('etag', false);
  // Behind nginx: the client's address from X-Forwarded-For (rate limits per client, logs), for TRUST_PROXY only.
  if (context.config.trustProxy !== undefined) app.set('trust proxy', context.config.trustProxy);
  app.use(context.metrics.httpMiddleware());
  app.use(requestLogger(context.logger));
  // Security headers. The Content-Security-Policy lets the pages load only this server's scripts and styles;
  // images also from blob: (the web page previews the chosen photo) and data: (Swagger UI's icons).
  app.use(
    helmet({
      contentSecurityPolicy: { directives: { imgSrc: ["'self'", 'data:', 'blob:'] } },
      strictTransportSecurity: Boolean(context.config.tlsCert),
    }),
  );
  app.use(closeAfterUnreadBody);
  app.use(singleHostHeader);
  app.use(originChecks(context.config));
  // Keys are checked by each route (its guard); the rate limit counts every request before that, a request
  // with a wrong key against its client's address.
  const access = accessGuards(context.config);
  app.use(rateLimiter({ perMinute: context.config.rateLimit, store: context.rateLimitStore, keyIdentity: access.keyIdentity }));
  const routes = { ...context, access };
  app.use(predictRoutes(routes));
  app.use(statusRoutes(routes));
  app.use(reloadRoutes(routes));
  app.use(metricsRoutes(routes));
  app.use(
    docsRoutes({
      auth: context.config.apiKeys.length + context.config.adminApiKeys.length > 0,
      rateLimit: context.config.rateLimit,
      maxUploadBytes: context.config.maxUploadBytes,
    }),
  );
  app.use(webRoutes());
  app.use(notFound);
  app.use(errorHandler({ maxUploadBytes: context.config.maxUploadBytes }));
  return app;
}
