// POST /reload_model: read the model folder again (weights, class mapping, vocabulary) and swap it in. On
// failure the running model keeps serving and the answer says why (the workshop's clients expect the reason).
import { Router } from 'express';

import type { AppContext } from '../app.js';
import { HttpError, methodNotAllowed } from '../errors.js';

export function reloadRoutes({ models, cache }: AppContext): Router {
  const router = Router();
  router.post('/reload_model', async (req, res) => {
    let generation: number;
    let loadMs: number;
    try {
      ({ generation, loadMs } = await models.reload());
    } catch (err) {
      throw new HttpError(500, (err as Error).message, { cause: err });
    }
    cache.clear();
    req.log.info({ generation, load_ms: Math.round(loadMs) }, 'model reloaded');
    res.json({ status: 'model reloaded', model_generation: generation });
  });
  router.all('/reload_model', methodNotAllowed('POST'));
  return router;
}
