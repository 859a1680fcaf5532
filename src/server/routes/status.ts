// GET /health, GET /classes and GET /system_status: what monitoring and clients read about the running model.
import { Router } from 'express';

import { runtimeInfo } from '../../index.js';
import type { AppContext } from '../app.js';
import { methodNotAllowed } from '../errors.js';

export function statusRoutes({ models, cache }: AppContext): Router {
  const router = Router();
  const device = (): string => (models.classifier.device.startsWith('cuda') ? 'cuda' : 'cpu');
  // Asked once: a reload changes the model, not the LibTorch of the process (nor BACKEND). The ONNX backend
  // never loads LibTorch, so it has no version to give.
  const libtorchVersion = models.classifier.backend === 'torch' ? runtimeInfo().libtorchVersion : null;

  router.get('/health', (_req, res) => {
    res.json({ status: 'healthy', device: device() });
  });

  router.get('/classes', (_req, res) => {
    res.json({ classes: models.classifier.folder.classNames });
  });

  router.get('/system_status', (_req, res) => {
    const classifier = models.classifier;
    res.json({
      device: device(),
      cache_size: cache.size,
      model: 'FoodClassifier',
      num_classes: classifier.numClasses,
      // beyond the workshop's fields
      backend: classifier.backend,
      device_name: classifier.device,
      model_generation: models.generation,
      prediction_cache: cache.stats,
      token_cache: classifier.tokenCache,
      libtorch_version: libtorchVersion,
      uptime_s: Math.round(process.uptime()),
    });
  });

  for (const path of ['/health', '/classes', '/system_status']) router.all(path, methodNotAllowed('GET'));
  return router;
}
