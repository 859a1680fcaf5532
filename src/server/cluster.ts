// WORKERS=N: the seed's "multiple workers", with node:cluster. The primary process forks N workers, each of which
// loads the model and serves on the shared port; it replaces a worker that dies, stops them all gracefully on
// SIGTERM, and coordinates what must reach every worker:
//   a reload   POST /reload_model reaches one worker, which asks the primary; the primary asks every worker to
//              reload (each swaps its model only on success) and the answer says whether all did; a worker that
//              does not answer within RELOAD_TIMEOUT is reported as failed (it may still reload later);
//   /metrics   one worker's scrape returns every worker's figures, summed (prom-client's AggregatorRegistry,
//              which gives up after 5 s when a worker does not answer).
// Every wait between the processes is bounded: a stopped or wedged process costs a request an error, never an
// answer that does not come.
// Connections: SCHED_NONE, not node:cluster's default round-robin. The workers accept from the shared listening
// socket themselves, and the primary never holds a connection. Under round-robin the primary accepts every
// connection and sends it to a worker over IPC; one sent to a worker that dies (kill -9, the OOM killer) before
// taking it stays in the primary for ever, never answered nor closed (node:cluster never hands it to another).
// With SCHED_NONE a connection waits in the kernel's queue until a live worker accepts it. (node:cluster still
// closes the listening socket when its last worker leaves: if every worker dies at once, the port is closed
// until a new one listens.)
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';

import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';

import type { ServiceConfig } from './config.js';

type ToPrimary =
  | { kind: 'tsn:reload-all'; id: number }
  | { kind: 'tsn:reloaded'; id: number; result: WorkerReload }
  | { kind: 'tsn:metrics'; id: number }
  | { kind: 'tsn:listening'; url: string };

type ToWorker =
  | { kind: 'tsn:reload'; id: number }
  | { kind: 'tsn:reload-all-done'; id: number; results: WorkerReload[] }
  | { kind: 'tsn:metrics-done'; id: number; contentType: string; body: string; error?: string };

/** The code of a worker's reload that did not answer within RELOAD_TIMEOUT. */
export const RELOAD_TIMED_OUT = 'ERR_RELOAD_TIMEOUT';
/** The code of a request to the primary that it did not answer in time (see ask). */
export const PRIMARY_TIMED_OUT = 'ERR_PRIMARY_TIMEOUT';
/** How long a worker waits for the primary's metrics: prom-client's own 5 s for the workers, and a margin. */
const METRICS_WAIT_MS = 10_000;
/** How long a worker waits for the primary's reload answer beyond RELOAD_TIMEOUT (the primary answers at it). */
const RELOAD_WAIT_MARGIN_MS = 10_000;

/**
 * What a worker needs of the models it serves: a reload (model-manager.ts's ModelManager is one). Declared
 * here, so that cluster.ts does not import model-manager.ts, which imports threadsPerWorker from here.
 */
export interface ReloadableModels {
  reload(): Promise<{ generation: number; loadMs: number }>;
}

/** One worker's reload: its process id, and its new generation or why it failed. */
export interface WorkerReload {
  pid: number;
  ok: boolean;
  generation?: number;
  loadMs?: number;
  /** The error, for the log and the client's summary. */
  error?: { message: string; code?: string; file?: string; path?: string };
}

const isMessage = (m: unknown): m is { kind: string } =>
  typeof m === 'object' && m !== null && typeof (m as { kind?: unknown }).kind === 'string' && (m as { kind: string }).kind.startsWith('tsn:');

/** THREADS for each worker when unset: the cores divided among the workers, at least 1. */
export function threadsPerWorker(config: ServiceConfig): number | undefined {
  return config.threads ?? (config.workers > 1 ? Math.max(1, Math.floor(availableParallelism() / config.workers)) : undefined);
}

// --- the primary --------------------------------------------------------------------------------------------

/**
 * Runs the primary: forks config.workers workers (this same program; cluster.isWorker tells them apart), keeps
 * them alive, relays reloads and metrics, and stops them on SIGTERM/SIGINT (exit 0 when all stopped cleanly).
 */
export function runPrimary(config: ServiceConfig, logger: Logger): void {
  // Before the first fork (see the header): the workers accept connections themselves.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const threads = threadsPerWorker(config);
  const env = threads === undefined ? {} : { THREADS: String(threads) };
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  let listening = 0;
  let announced = false;
  const starts: number[] = [];

  const fork = (): Worker => {
    const worker = cluster.fork(env);
    worker.on('message', (message: unknown) => onMessage(worker, message));
    return worker;
  };

  // A reload asked for by one worker: every worker's result, until each worker that was asked has answered or
  // RELOAD_TIMEOUT has passed (a worker that has not is then a failure).
  interface PendingReload {
    from: Worker;
    requesterId: number;
    waitingFor: Set<number>;
    results: WorkerReload[];
    timer: NodeJS.Timeout;
  }
  const pendingReloads = new Map<number, PendingReload>();
  let nextReload = 1;
  const finish = (id: number, pending: PendingReload): void => {
    pendingReloads.delete(id);
    clearTimeout(pending.timer);
    if (pending.from.isConnected()) pending.from.send({ kind: 'tsn:reload-all-done', id: pending.requesterId, results: pending.results } satisfies ToWorker);
  };
  const record = (id: number, result: WorkerReload): void => {
    const pending = pendingReloads.get(id);
    if (!pending?.waitingFor.delete(result.pid)) {
      // A worker that answers past RELOAD_TIMEOUT did reload (or not): the log says which.
      if (!pending && result.error?.code !== RELOAD_TIMED_OUT)
        logger.warn({ worker: result.pid, ok: result.ok }, 'a worker answered a reload after RELOAD_TIMEOUT');
      return;
    }
    pending.results.push(result);
    if (pending.waitingFor.size === 0) finish(id, pending);
  };
  const timedOut = (id: number): void => {
    const pending = pendingReloads.get(id);
    if (!pending) return;
    const seconds = config.reloadTimeoutMs / 1000;
    logger.error({ workers: [...pending.waitingFor], reload_timeout_s: seconds }, 'workers did not answer a reload within RELOAD_TIMEOUT');
    const message = `the worker did not answer within ${seconds} s (RELOAD_TIMEOUT); it may still reload when it does`;
    for (const pid of [...pending.waitingFor]) record(id, { pid, ok: false, error: { message, code: RELOAD_TIMED_OUT } });
  };

  const onMessage = (from: Worker, message: unknown): void => {
    if (!isMessage(message)) return;
    const m = message as ToPrimary;
    switch (m.kind) {
      case 'tsn:listening':
        if (++listening === config.workers && !announced) {
          announced = true;
          // node_flags: the primary's, which cluster.fork gives every worker.
          logger.info(
            {
              url: m.url,
              workers: config.workers,
              threads_per_worker: threads ?? null,
              pid: process.pid,
              node_flags: process.execArgv,
              // Who accepts the connections: 'none' (the workers themselves) or 'rr' (the primary, in turn).
              scheduling: cluster.schedulingPolicy === cluster.SCHED_NONE ? 'none' : 'rr',
            },
            'listening',
          );
        }
        return;
      case 'tsn:reload-all': {
        const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
        const id = nextReload++;
        const timer = setTimeout(() => timedOut(id), config.reloadTimeoutMs);
        const pending: PendingReload = { from, requesterId: m.id, waitingFor: new Set(workers.map((w) => w.process.pid ?? 0)), results: [], timer };
        pendingReloads.set(id, pending);
        for (const w of workers) w.send({ kind: 'tsn:reload', id } satisfies ToWorker);
        if (workers.length === 0) finish(id, pending);
        return;
      }
      case 'tsn:reloaded':
        record(m.id, m.result);
        return;
      case 'tsn:metrics':
        // prom-client waits 5 s for every worker's figures, then rejects with 'Operation timed out.'.
        aggregator.clusterMetrics().then(
          (body) => from.isConnected() && from.send({ kind: 'tsn:metrics-done', id: m.id, contentType: aggregator.contentType, body } satisfies ToWorker),
          (err: Error) => {
            const error = err.message === 'Operation timed out.' ? 'a worker did not answer within 5 s' : err.message;
            logger.error({ err }, "cannot gather the workers' metrics");
            if (from.isConnected()) from.send({ kind: 'tsn:metrics-done', id: m.id, contentType: 'text/plain', body: '', error } satisfies ToWorker);
          },
        );
        return;
    }
  };

  cluster.on('exit', (worker, code, signal) => {
    // A worker that leaves mid-reload answers no more: its part of the reload is a failure.
    const pid = worker.process.pid ?? 0;
    for (const id of [...pendingReloads.keys()]) record(id, { pid, ok: false, error: { message: 'the worker stopped during the reload' } });
    if (stopping) return;
    listening = Math.max(0, listening - 1);
    // A worker that keeps dying (a model that no longer loads) is not restarted for ever.
    const now = Date.now();
    starts.push(now);
    while (starts.length > 0 && now - starts[0] > 60_000) starts.shift();
    if (starts.length > 5 * config.workers) {
      logger.fatal({ pid, code, signal }, 'workers keep stopping: giving up');
      process.exit(1);
    }
    logger.error({ pid, code, signal }, 'a worker stopped: starting another');
    fork();
  });

  let signals = 0;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (++signals > 1) {
        logger.warn({ signal }, 'second signal: stopping the workers now');
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'shutting down: each worker finishes its requests in flight');
      const codes: (number | null)[] = [];
      const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      if (alive.length === 0) process.exit(0);
      // Past SHUTDOWN_TIMEOUT (and a margin for freeing the models), what is left is cut.
      const timer = setTimeout(() => {
        logger.warn('workers still running at SHUTDOWN_TIMEOUT: stopping them');
        for (const w of alive) w.process.kill('SIGKILL');
      }, config.shutdownTimeoutMs + 5_000);
      timer.unref();
      for (const w of alive) {
        w.once('exit', (code) => {
          codes.push(code);
          if (codes.length === alive.length) {
            const clean = codes.every((c) => c === 0);
            logger.info({ finished: clean }, clean ? 'stopped' : 'stopped: some workers did not finish cleanly');
            process.exit(clean ? 0 : 1);
          }
        });
        w.process.kill('SIGTERM');
      }
    });
  }

  logger.info({ workers: config.workers, threads_per_worker: threads ?? null, pid: process.pid }, 'starting the workers');
  for (let i = 0; i < config.workers; i++) fork();
}

// --- a worker -----------------------------------------------------------------------------------------------

let nextRequest = 1;
const waiting = new Map<number, (message: ToWorker) => void>();

/** Asks the primary; rejects (code PRIMARY_TIMED_OUT) when it has not answered within `timeoutMs`. */
function ask(message: ToPrimary & { id: number }, timeoutMs: number): Promise<ToWorker> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(message.id);
      const seconds = Math.round(timeoutMs / 100) / 10;
      reject(Object.assign(new Error(`the primary process did not answer within ${seconds} s`), { code: PRIMARY_TIMED_OUT }));
    }, timeoutMs);
    waiting.set(message.id, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
    process.send!(message);
  });
}

/** In a worker: answers the primary's requests (reload) and its replies to this worker's requests. */
export function serveWorker(models: ReloadableModels, registry: Registry, logger: Logger, url: string, onReloaded: () => void): void {
  // prom-client answers the primary's requests for this worker's metrics once an AggregatorRegistry exists here.
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    const m = message as ToWorker;
    if (m.kind === 'tsn:reload') {
      models.reload().then(
        ({ generation, loadMs }) => {
          onReloaded();
          process.send!({ kind: 'tsn:reloaded', id: m.id, result: { pid: process.pid, ok: true, generation, loadMs } } satisfies ToPrimary);
        },
        (err: Error & { code?: string; file?: string; path?: string }) => {
          logger.error({ err }, 'reload failed in this worker');
          const error = { message: err.message, code: err.code, file: err.file, path: err.path };
          process.send!({ kind: 'tsn:reloaded', id: m.id, result: { pid: process.pid, ok: false, error } } satisfies ToPrimary);
        },
      );
      return;
    }
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  process.send!({ kind: 'tsn:listening', url } satisfies ToPrimary);
}

/**
 * In a worker: every worker reloads (through the primary); the results of all, a worker that did not answer
 * within `reloadTimeoutMs` (RELOAD_TIMEOUT) among the failures. Rejects (PRIMARY_TIMED_OUT) when the primary
 * does not answer at all.
 */
export async function reloadEveryWorker(reloadTimeoutMs: number): Promise<WorkerReload[]> {
  const reply = await ask({ kind: 'tsn:reload-all', id: nextRequest++ }, reloadTimeoutMs + RELOAD_WAIT_MARGIN_MS);
  return reply.kind === 'tsn:reload-all-done' ? reply.results : [];
}

/** In a worker: the metrics of all the workers (through the primary); rejects when they cannot be gathered. */
export async function clusterMetrics(): Promise<{ contentType: string; body: string }> {
  const reply = await ask({ kind: 'tsn:metrics', id: nextRequest++ }, METRICS_WAIT_MS);
  if (reply.kind !== 'tsn:metrics-done' || reply.error)
    throw new Error(`the primary could not gather the workers' metrics${reply.kind === 'tsn:metrics-done' ? `: ${reply.error}` : ''}`);
  return { contentType: reply.contentType, body: reply.body };
}

export const inWorker = (): boolean => cluster.isWorker;
