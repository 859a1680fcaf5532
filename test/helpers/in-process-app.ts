// The service's Express app in the test's own process (createApp, src/server/app.ts), listening on a free
// loopback port: for tests of its routes without a service process. The parts it takes beside the model are
// made from `config` as the service's start-up makes them (src/server/server.ts).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import pino, { type Logger } from 'pino';

import { Admission } from '../../src/server/admission.js';
import { createApp } from '../../src/server/app.js';
import type { ServiceConfig } from '../../src/server/config.js';
import { ServiceMetrics } from '../../src/server/metrics.js';
import type { ModelManager } from '../../src/server/model-manager.js';
import { MemoryPredictionCache, type PredictionCache } from '../../src/server/prediction-cache.js';
import { UploadSlots } from '../../src/server/upload-slots.js';

export interface InProcessApp {
  server: Server;
  url: string;
}

export async function listenInProcess(
  config: ServiceConfig,
  models: ModelManager,
  { cache = new MemoryPredictionCache(config.predictionCacheSize), logger = pino({ level: 'silent' }) }: { cache?: PredictionCache; logger?: Logger } = {},
): Promise<InProcessApp> {
  const admission = new Admission({ maxQueue: config.maxQueue, timeoutMs: config.requestTimeoutMs });
  const uploads = new UploadSlots(config.maxConcurrentUploads);
  const metrics = new ServiceMetrics({ models, cache, admission, uploads });
  const server = createApp({ config, models, cache, admission, uploads, metrics, logger }).listen(0, '127.0.0.1');
  await new Promise((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
