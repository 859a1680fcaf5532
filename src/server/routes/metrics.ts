// GET /metrics: Prometheus' text format (see metrics.ts for what each metric means).
import { Router } from 'express';

import type { AppContext } from '../app-context.js';
import { clusterMetrics, inWorker } from '../cluster.js';
import { methodNotAllowed } from '../errors.js';

export function metricsRoutes({ metrics }: AppContext): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    // With WORKERS, every worker's figures, summed (the process metrics too: the service's total memory).
    const { contentType, body } = inWorker() ? await clusterMetrics() : await metrics.exposition();
    res.setHeader('Content-Type', contentType);
    res.send(body);
  });
  router.all('/metrics', methodNotAllowed('GET'));
  return router;
}
