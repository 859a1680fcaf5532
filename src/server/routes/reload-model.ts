// POST /reload_model: read the model folder again (weights, class mapping, vocabulary) and swap it in. On
// failure the running model keeps serving and the answer says which file and what is wrong with it (the
// workshop's clients expect a reason); the full error goes to the log. With WORKERS, every worker reloads
// (through the primary, cluster.ts), and the answer says whether all did: a worker that did not answer within
// RELOAD_TIMEOUT counts as failed, and a primary that does not answer at all is a 503.
import type { Router } from 'express';

import { MODEL_RELOADED, type ReloadResponse } from '../api-schema.js';
import type { RouteContext } from '../app-context.js';
import { inWorker, RELOAD_TIMED_OUT, reloadEveryWorker, type WorkerReload } from '../cluster.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import { reloadFailure } from '../reload-failure.js';
import { strictRouter } from './router.js';

export function reloadRoutes({ config, models, cache, access }: RouteContext): Router {
  const router = strictRouter();
  // Only an admin key may reload (with ADMIN_API_KEYS), decided here, on the route that runs.
  router.post('/reload_model', access.admin, async (req, res) => {
    if (inWorker()) {
      let results: WorkerReload[];
      try {
        results = await reloadEveryWorker(config.reloadTimeoutMs);
      } catch (err) {
        throw new HttpError(503, `Reload failed: ${(err as Error).message}; the workers may still reload`, { cause: err });
      }
      const failed = results.filter((r) => !r.ok);
      req.log.info(
        { workers: results.map((r) => ({ pid: r.pid, ok: r.ok, generation: r.generation, error: r.error?.code })) },
        failed.length ? 'reload failed in some workers' : 'model reloaded',
      );
      if (failed.length > 0) throw new HttpError(500, workersFailure(results, config.reloadTimeoutMs), { cause: failed[0].error });
      const own = results.find((r) => r.pid === process.pid);
      res.json({ status: MODEL_RELOADED, model_generation: own?.generation ?? models.generation, workers: results.length } satisfies ReloadResponse);
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
    res.json({ status: MODEL_RELOADED, model_generation: generation } satisfies ReloadResponse);
  });
  router.all('/reload_model', methodNotAllowed('POST'));
  return router;
}

/**
 * What a client is told when some workers did not reload: how many did not answer within RELOAD_TIMEOUT, and
 * why the others failed (the first's reason), each as a count of all the workers.
 */
function workersFailure(results: WorkerReload[], reloadTimeoutMs: number): string {
  const silent = results.filter((r) => !r.ok && r.error?.code === RELOAD_TIMED_OUT).length;
  const failed = results.filter((r) => !r.ok && r.error?.code !== RELOAD_TIMED_OUT);
  const reloaded = results.length - silent - failed.length;
  const parts: string[] = [];
  if (silent > 0) {
    parts.push(
      `Reload failed: ${silent} of ${results.length} workers did not answer within ${reloadTimeoutMs / 1000} s (RELOAD_TIMEOUT) and may still reload; ${reloaded} reloaded`,
    );
  }
  if (failed.length > 0) {
    const reason = reloadFailure(Object.assign(new Error(failed[0].error?.message ?? 'unknown'), failed[0].error));
    parts.push(`${reason} (${failed.length} of ${results.length} workers)`);
  }
  return parts.join('; ');
}
