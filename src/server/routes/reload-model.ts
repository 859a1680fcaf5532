// POST /reload_model: read the model folder again (weights, class mapping, vocabulary) and swap it in. On
// failure the running model keeps serving and the answer says which file and what is wrong with it (the
// workshop's clients expect a reason); the full error goes to the log. With WORKERS, every worker reloads
// (through the primary, cluster.ts), and the answer says whether all did.
import { Router } from 'express';

import type { AppContext } from '../app-context.js';
import { inWorker, reloadEveryWorker } from '../cluster.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import { reloadFailure } from '../reload-failure.js';

export function reloadRoutes({ models, cache }: AppContext): Router {
  const router = Router();
  router.post('/reload_model', async (req, res) => {
    if (inWorker()) {
      const results = await reloadEveryWorker();
      const failed = results.filter((r) => !r.ok);
      req.log.info(
        { workers: results.map((r) => ({ pid: r.pid, ok: r.ok, generation: r.generation })) },
        failed.length ? 'reload failed in some workers' : 'model reloaded',
      );
      if (failed.length > 0) {
        const reason = reloadFailure(Object.assign(new Error(failed[0].error?.message ?? 'unknown'), failed[0].error));
        throw new HttpError(500, `${reason} (${failed.length} of ${results.length} workers)`, { cause: failed[0].error });
      }
      const own = results.find((r) => r.pid === process.pid);
      res.json({ status: 'model reloaded', model_generation: own?.generation ?? models.generation, workers: results.length });
      return;
    }
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
