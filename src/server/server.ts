// The service running: the model loaded, the app listening, and its graceful stop (no new connections, the
// requests in flight answered, the models freed once their predictions are done).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

import type { Logger } from 'pino';

import { Admission } from './admission.js';
import { UploadSlots } from './upload-slots.js';
import { createApp } from './app.js';
import type { ServiceConfig } from './config.js';
import { ServiceMetrics } from './metrics.js';
import { ModelManager } from './model-manager.js';
import { MemoryPredictionCache, RedisPredictionCache, type PredictionCache } from './prediction-cache.js';
import { redisRateLimitStore } from './rate-limit.js';
import { answerExpectContinue } from './request-body.js';

export interface RunningService {
  server: Server;
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  models: ModelManager;
  cache: PredictionCache;
  metrics: ServiceMetrics;
  /**
   * Stops accepting connections, waits for the requests in flight (at most config.shutdownTimeoutMs, then
   * closes what is left), frees the model. Resolves true when everything in flight finished.
   */
  close(): Promise<boolean>;
}

/** How long start-up waits for Redis (counted from before the model loads) before serving without it. */
const REDIS_STARTUP_WAIT_MS = 3_000;

/** Loads the model (rejects, naming the file at fault, when it cannot) and listens. */
export async function startService(config: ServiceConfig, logger: Logger): Promise<RunningService> {
  let metrics: ServiceMetrics | undefined;
  // Redis connects while the model loads: the start-up wait for it overlaps the load.
  let models: ModelManager;
  const cache: PredictionCache = config.redisUrl
    ? new RedisPredictionCache({
        url: config.redisUrl,
        ttlSeconds: config.predictionCacheTtlSeconds,
        logger,
        // loadConfig requires CACHE_SECRET with REDIS_URL.
        secret: config.cacheSecret ?? '',
        // Entries are looked up only once the model is loaded.
        classNames: () => models.classifier.folder.classNames,
      })
    : new MemoryPredictionCache(config.predictionCacheSize, config.predictionCacheTtlSeconds);
  const redisReady = cache instanceof RedisPredictionCache ? cache.ready(REDIS_STARTUP_WAIT_MS) : Promise.resolve(true);
  try {
    models = await ModelManager.load(config, logger, { onBatch: (record) => metrics?.observeBatch(record) });
  } catch (err) {
    await cache.close();
    throw err;
  }
  if (!(await redisReady)) {
    logger.warn({ wait_ms: REDIS_STARTUP_WAIT_MS }, 'Redis is not reachable at start-up: serving without the shared cache and counters until it is');
  }
  const admission = new Admission({ maxQueue: config.maxQueue, timeoutMs: config.requestTimeoutMs });
  const uploads = new UploadSlots(config.maxConcurrentUploads);
  metrics = new ServiceMetrics({ models, cache, admission, uploads });
  const rateLimitStore = cache instanceof RedisPredictionCache ? redisRateLimitStore(cache.redis) : undefined;
  const app = createApp({ config, models, cache, admission, uploads, metrics, logger, rateLimitStore });
  // Node checks the request timeouts below every connectionsCheckingInterval (30 s by default): often enough
  // that UPLOAD_TIMEOUT means what it says.
  const checking = { connectionsCheckingInterval: Math.min(1_000, config.uploadTimeoutMs) };
  const server: Server =
    config.tlsCert && config.tlsKey
      ? createHttpsServer({ ...checking, cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) }, app)
      : createServer(checking, app);
  answerExpectContinue(server, config.maxUploadBytes);
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  // A request (headers and upload) must arrive within UPLOAD_TIMEOUT, or it gets 408 and its connection
  // closes: a stalled upload holds its buffers that long at most (Node's default is 5 minutes).
  server.requestTimeout = config.uploadTimeoutMs;
  // Node's advice: headersTimeout above keepAliveTimeout, so an idle connection is closed by the keep-alive
  // timer and never mid-request; and no longer than the whole request may take.
  server.headersTimeout = Math.min(config.keepAliveTimeoutMs + 5_000, config.uploadTimeoutMs);
  try {
    await listen(server, config.port, config.host);
  } catch (err) {
    await Promise.all([models.close(), cache.close()]);
    throw err;
  }
  // Listening, the server can still fail (e.g. EMFILE when accepting under a connection flood): log it, live on.
  server.on('error', (err) => logger.error({ err }, 'server error'));
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  if (!isLoopback(address) && config.apiKeys.length === 0) {
    logger.warn(
      { host: address, allowed_hosts: config.allowedHosts },
      'listening beyond loopback without API keys: anyone who reaches this address may use the service (set API_KEYS, and RATE_LIMIT; only Host headers in ALLOWED_HOSTS are answered)',
    );
  }

  let closing: Promise<boolean> | undefined;
  const close = (): Promise<boolean> => {
    const deadline = Date.now() + config.shutdownTimeoutMs;
    closing ??= stop(server, config.shutdownTimeoutMs).then(async (finished) => {
      // Freeing the models waits for a reload under way and for predictions still running: within the same
      // SHUTDOWN_TIMEOUT, or the stop is reported as cut.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
      const freed = await Promise.race([models.close().then(() => true), timeout]);
      await cache.close();
      clearTimeout(timer);
      return finished && freed;
    });
    return closing;
  };
  const scheme = config.tlsCert ? 'https' : 'http';
  return { server, url: `${scheme}://${host}:${port}`, models, cache, metrics, close };
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1';
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${host}:${port}`;
      if (err.code === 'EADDRINUSE') reject(new Error(`Port ${port} is in use (${where}): stop what holds it, or set PORT`, { cause: err }));
      else if (err.code === 'EACCES') reject(new Error(`No permission to listen on ${where}: choose a PORT above 1023`, { cause: err }));
      else reject(err);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function stop(server: Server, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    // Responses from now on close their connection, so that keep-alive clients go away. Prepended: it must run
    // before the app, which may answer (and send the headers) synchronously.
    server.prependListener('request', (_req, res) => res.setHeader('Connection', 'close'));
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    const deadline = setTimeout(() => {
      server.closeAllConnections();
      finish(false);
    }, timeoutMs);
    let done = false;
    function finish(finished: boolean): void {
      if (done) return;
      done = true;
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve(finished);
    }
    server.close(() => finish(true));
  });
}
