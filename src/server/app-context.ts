// What the app's routes and middleware share: the configuration, the model, the caches, the admission queue,
// the metrics and the log. Its own module, so that app.ts and the routes do not import each other.
import type { Store } from 'express-rate-limit';
import type { Logger } from 'pino';

import type { Admission } from './admission.js';
import type { ServiceConfig } from './config.js';
import type { ServiceMetrics } from './metrics.js';
import type { ModelManager } from './model-manager.js';
import type { PredictionCache } from './prediction-cache.js';
import type { AccessGuards } from './security.js';
import type { UploadSlots } from './upload-slots.js';

export interface AppContext {
  config: ServiceConfig;
  models: ModelManager;
  cache: PredictionCache;
  admission: Admission;
  /** The uploads /predict reads at once (MAX_CONCURRENT_UPLOADS). */
  uploads: UploadSlots;
  metrics: ServiceMetrics;
  logger: Logger;
  /** Where RATE_LIMIT's counters live; default: this process's memory. */
  rateLimitStore?: Store;
}

/** What the routes get: the context, and the guards they put in front of their handlers (security.ts). */
export interface RouteContext extends AppContext {
  access: AccessGuards;
}
