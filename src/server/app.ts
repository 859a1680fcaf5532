// The Express app, assembled from its parts: the request log, the routes (one concern a file), the 404 and the
// one error handler. It knows nothing of ports or signals (server.ts does), so tests and scripts can mount it.
import express, { type Express } from 'express';
import type { Logger } from 'pino';

import type { Admission } from './admission.js';
import type { ServiceConfig } from './config.js';
import { errorHandler, notFound } from './errors.js';
import { requestLogger } from './logger.js';
import type { ServiceMetrics } from './metrics.js';
import type { ModelManager } from './model-manager.js';
import type { PredictionCache } from './prediction-cache.js';
import { docsRoutes } from './routes/docs.js';
import { metricsRoutes } from './routes/metrics.js';
import { statusRoutes } from './routes/status.js';
import { predictRoutes } from './routes/predict.js';
import { reloadRoutes } from './routes/reload-model.js';
import { webRoutes } from './routes/web.js';

/** What the routes share. */
export interface AppContext {
  config: ServiceConfig;
  models: ModelManager;
  cache: PredictionCache;
  admission: Admission;
  metrics: ServiceMetrics;
  logger: Logger;
}

export function createApp(context: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(context.metrics.httpMiddleware());
  app.use(requestLogger(context.logger));
  app.use(predictRoutes(context));
  app.use(statusRoutes(context));
  app.use(reloadRoutes(context));
  app.use(metricsRoutes(context));
  app.use(docsRoutes());
  app.use(webRoutes());
  app.use(notFound);
  app.use(errorHandler({ maxUploadBytes: context.config.maxUploadBytes }));
  return app;
}
