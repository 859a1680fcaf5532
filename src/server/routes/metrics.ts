// GET /metrics: Prometheus' text format (see metrics.ts for what each metric means).
import type { Router } from 'express';

import type { RouteContext } from '../app-context.js';
import { clusterMetrics, inWorker } from '../cluster.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import { strictRouter } from './router.js';

export function metricsRoutes({ metrics, access }: RouteContext): Router {
  const router = strictRouter();
  router.get('/metrics', access.user, async (_req, res) => {
    // With WORKERS, every worker's figures, summed (the process metrics too: the service's total memory); when
    // they cannot be gathered (a worker or the primary that does not answer), a 503 that says why.
    const { contentType, body } = inWorker() ? await clusterMetrics().catch(unavailable) : await metrics.exposition();
    res.setHeader('Content-Type', contentType);
    res.send(body);
  });
  router.all('/metrics', methodNotAllowed('GET'));
  return router;
}

function unavailable(err: Error): never {
  throw new HttpError(503, `Metrics unavailable: ${err.message}`, { cause: err, headers: { 'Retry-After': '5' } });
}
