#!/usr/bin/env node
// `npm start` runs this: the workshop's food classifier API on port 8000 (see --help for the configuration).
import cluster from 'node:cluster';
import { createRequire } from 'node:module';

import { runPrimary, serveWorker } from './cluster.js';
import { ConfigError, describeVariables, loadConfig, type ServiceConfig } from './config.js';
import { createLogger } from './logger.js';
import { limitMallocArenas } from '../process-memory.js';
import { describeRuntime } from './runtime-description.js';
import { type RunningService, startService } from './server.js';
import { BACKGROUND_NICENESS, keepOtherThreadsLowered } from '../thread-priority.js';

const USAGE = `Usage: npm start   (or: node dist/server/main.js [--help])

Serves the food classifier of a model folder with the workshop's HTTP API:
POST /predict, GET /health, GET /classes, GET /system_status, POST /reload_model,
GET /openapi.json, GET /docs (interactive docs) and GET / (a web page).

Configuration, from the environment or a .env file in the current folder:
${describeVariables()}

Logs are JSON lines on stdout (pipe into \`npx pino-pretty\` to read them by eye).
SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
if (args.length > 0) {
  console.error(`Unknown argument: ${args[0]}\n\n${USAGE}`);
  process.exit(2);
}

let config: ServiceConfig;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`Cannot start: ${err.message}`);
  process.exit(1);
}

const logger = createLogger(config.logLevel);
// Before the model's threads start: a few malloc arenas instead of one per busy thread (a steadier RSS).
limitMallocArenas(2);
if (config.workers > 1 && cluster.isPrimary) {
  // WORKERS=N: this process forks N workers (this same program) and watches over them.
  runPrimary(config, logger);
} else {
  await serve(config);
}

/** This process serves: loads the model, listens, and stops gracefully on a signal. */
async function serve(config: ServiceConfig): Promise<void> {
  const started = performance.now();
  let service: RunningService;
  try {
    service = await startService(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'cannot start');
    console.error(`Cannot start: ${(err as Error).message}`);
    process.exit(1);
  }

  // Installed before 'listening' is logged: from then on a signal must always mean a graceful stop.
  let signals = 0;
  const running = service;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      // A worker hears the terminal's Ctrl-C and its primary's SIGTERM alike: one graceful stop (the primary
      // cuts what is left at SHUTDOWN_TIMEOUT).
      if (cluster.isWorker && signals++ > 0) return;
      if (!cluster.isWorker && ++signals > 1) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      logger.info({ signal }, 'shutting down: finishing the requests in flight');
      running.close().then(
        (finished) => {
          logger.info({ finished }, finished ? 'stopped' : 'stopped: requests still running at SHUTDOWN_TIMEOUT were cut');
          process.exit(finished ? 0 : 1);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }

  // The model is loaded and its threads started: from here the event loop comes first (thread-priority.ts).
  const { lowered } = await keepOtherThreadsLowered();
  const classifier = service.models.classifier;
  const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
  logger.info(
    {
      url: service.url,
      ...describeRuntime(classifier),
      model_dir: classifier.folder.dir,
      classes: classifier.numClasses,
      batching: { max_batch: config.maxBatch, max_batch_delay_ms: config.maxBatchDelayMs },
      queue: { max_queue: config.maxQueue, request_timeout_ms: config.requestTimeoutMs },
      version,
      env_file: config.envFile ?? null,
      startup_ms: Math.round(performance.now() - started),
      // The command line's (npm start's --v8-pool-size=1 among them; docs/service.md, "How a prediction is computed"), not NODE_OPTIONS'.
      node_flags: process.execArgv,
      ...(lowered > 0 ? { background_niceness: BACKGROUND_NICENESS } : {}),
      ...(cluster.isWorker ? { worker: process.pid } : {}),
    },
    // A worker's primary says 'listening' once every worker does.
    cluster.isWorker ? 'worker listening' : 'listening',
  );
  if (cluster.isWorker) serveWorker(service.models, service.metrics.registry, logger, service.url, () => service.cache.clear());
}
