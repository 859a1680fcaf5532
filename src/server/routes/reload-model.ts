// POST /reload_model: read the model folder again (weights, class mapping, vocabulary) and swap it in. On
// failure the running model keeps serving and the answer says which file and what is wrong with it (the
// workshop's clients expect a reason); the full error goes to the log.
import { Router } from 'express';

import type { AppContext } from '../app.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import { reloadFailure } from '../reload-failure.js';

export function reloadRoutes({ models, cache }: AppContext): Router {
  const router = Router();
  router.post('/reload_model', async (req, res) => {
    let generation: number;
    let loadMs: number;
    try {
      ({ generation, loadMs } = await models.reload());
    } catch (err) {
      throw new HttpError(500, reloadFailure(err), { cause: err });
    }
    cache.clear();
    req.log.info({ generation, load_ms: Math.round(loadMs) }, 'model reloaded');
    res.json({ status: 'model reloaded', model_generation: generation });
  });
  router.all('/reload_model', methodNotAllowed('POST'));
  return router;
}
