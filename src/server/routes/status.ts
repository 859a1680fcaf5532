// GET /health, GET /classes and GET /system_status: what monitoring and clients read about the running model.
import type { Router } from 'express';

import { type Classes, HEALTHY, type Health, MODEL_NAME, type SystemStatus } from '../api-schema.js';
import type { RouteContext } from '../app-context.js';
import { methodNotAllowed } from '../errors.js';
import { describeRuntime } from '../runtime-description.js';
import { strictRouter } from './router.js';

export function statusRoutes({ config, models, cache, admission, access }: RouteContext): Router {
  const router = strictRouter();
  const device = (): Health['device'] => (models.classifier.device.startsWith('cuda') ? 'cuda' : 'cpu');

  router.get('/health', (_req, res) => {
    res.json({ status: HEALTHY, device: device() } satisfies Health);
  });

  router.get('/classes', access.user, (_req, res) => {
    res.json({ classes: models.classifier.folder.classNames } satisfies Classes);
  });

  router.get('/system_status', access.user, (_req, res) => {
    const classifier = models.classifier;
    const { device: deviceName, ...runtime } = describeRuntime(classifier);
    const features = classifier.textFeatureCache;
    res.json({
      device: device(),
      cache_size: cache.size,
      model: MODEL_NAME,
      num_classes: classifier.numClasses,
      // beyond the workshop's fields
      ...runtime,
      device_name: deviceName,
      libtorch_version: runtime.libtorch?.version ?? null,
      model_generation: models.generation,
      prediction_cache: { store: cache.kind, ...cache.stats },
      token_cache: classifier.tokenCache,
      text_feature_cache: features
        ? { size: features.size, max_size: features.maxSize, bytes_per_entry: features.bytesPerEntry, hits: features.hits, misses: features.misses }
        : null,
      batching: { max_batch: config.maxBatch, max_batch_delay_ms: config.maxBatchDelayMs },
      queue: {
        waiting: admission.waiting,
        max_queue: config.maxQueue,
        request_timeout_ms: config.requestTimeoutMs,
        rejected: { queue_full: admission.rejected.full, timeout: admission.rejected.timeout },
        large_decodes: { ...classifier.largeDecodes, max: config.maxLargeDecodes },
      },
      // which process answered: with WORKERS, one of them
      worker: process.pid,
      workers: config.workers,
      uptime_s: Math.round(process.uptime()),
    } satisfies SystemStatus);
  });

  for (const path of ['/health', '/classes', '/system_status']) router.all(path, methodNotAllowed('GET'));
  return router;
}
