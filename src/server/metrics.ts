// GET /metrics in Prometheus' text format (prom-client): what the service does and where the time goes.
//
//   http_requests_total{route,method,status}            requests answered
//   http_request_duration_seconds{route,method,status}  from the request's arrival to its answer's end
//   predict_queue_seconds                               /predict: admission to the start of its forward (all waits)
//   predict_preprocess_seconds                          /predict: decoding and preprocessing the photo
//   inference_queue_seconds{model}                      each request's wait in a model's batch queue
//   inference_forward_seconds{model}                    each forward (a whole batch)
//   inference_batch_size{model}                         requests per forward
//   predict_rejected_total{reason}                      503s: queue_full, timeout
//   predict_queue_waiting                               admitted /predict requests waiting for their forward
//   cache_hits_total{cache}, cache_misses_total{cache}, cache_entries{cache}
//                                                       predictions, tokens, text_features
//   cache_errors_total{cache}                           predictions: lookups and stores Redis failed (down, slow)
//   model_generation, model_reloads_total{result}       1 at start, +1 a successful reload
//   model_info{backend,layout,precision}                1: what runs the model (precision fp32 or int8)
//   plus prom-client's process and Node.js metrics: process_resident_memory_bytes, nodejs_eventloop_lag_*
//   (the event loop's delay), heap sizes, ...
// `model` is `model` (the whole model), `text_encoder` or `head` (the two parts).
import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { BatchRecord } from '../classifier/batch-scheduler.js';
import type { Admission } from './admission.js';
import type { UploadSlots } from './upload-slots.js';
import type { ModelManager } from './model-manager.js';
import type { PredictionCache } from './prediction-cache.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64];

type Totals = { hits: number; misses: number };

export interface MetricsSources {
  models: ModelManager;
  cache: PredictionCache;
  admission: Admission;
  uploads: UploadSlots;
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly #httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly #httpDuration: Histogram<'route' | 'method' | 'status'>;
  readonly #predictQueue: Histogram;
  readonly #preprocess: Histogram;
  readonly #inferenceQueue: Histogram<'model'>;
  readonly #forward: Histogram<'model'>;
  readonly #batchSize: Histogram<'model'>;
  readonly #rejected: Counter<'reason'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#httpRequests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered', labelNames: ['route', 'method', 'status'], registers });
    this.#httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: "Time from a request's arrival to the end of its answer",
      labelNames: ['route', 'method', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#predictQueue = new Histogram({
      name: 'predict_queue_seconds',
      help: '/predict: time from admission to the start of the forward that computes it (decoding, text features and batch queue)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#preprocess = new Histogram({
      name: 'predict_preprocess_seconds',
      help: '/predict: decoding and preprocessing the photo (libuv pool)',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#inferenceQueue = new Histogram({
      name: 'inference_queue_seconds',
      help: "Each request's wait in a model's batch queue",
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#forward = new Histogram({
      name: 'inference_forward_seconds',
      help: 'Each forward (one batch)',
      labelNames: ['model'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#batchSize = new Histogram({
      name: 'inference_batch_size',
      help: 'Requests computed by one forward',
      labelNames: ['model'],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.#rejected = new Counter({
      name: 'predict_rejected_total',
      help: '/predict requests refused with 503: queue_full, timeout',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['queue_full', 'timeout']) this.#rejected.inc({ reason }, 0);

    const { models, cache, admission, uploads } = sources;
    new Gauge({
      name: 'predict_uploads_reading',
      help: 'Uploads to /predict being read now (MAX_CONCURRENT_UPLOADS bounds it)',
      registers,
      collect() {
        this.set(uploads.reading);
      },
    });
    new Gauge({
      name: 'predict_uploads_waiting',
      help: 'Uploads to /predict waiting, unread, for one of the MAX_CONCURRENT_UPLOADS being read to end',
      registers,
      collect() {
        this.set(uploads.waiting);
      },
    });
    new Gauge({
      name: 'predict_queue_waiting',
      help: 'Admitted /predict requests waiting for their forward (MAX_QUEUE bounds it)',
      registers,
      collect() {
        this.set(admission.waiting);
      },
    });
    new Gauge({
      name: 'model_generation',
      help: 'The model in service: 1 at start, +1 on every successful reload (with WORKERS: the lowest of them)',
      registers,
      aggregator: 'min',
      collect() {
        this.set(models.generation);
      },
    });
    // An info metric (Prometheus' convention: the facts as labels, the value 1), for joins and alerts on them.
    new Gauge({
      name: 'model_info',
      help: 'The model in service, as labels (value 1): backend (torch, onnx), layout (parts, whole), precision (fp32, int8)',
      labelNames: ['backend', 'layout', 'precision'],
      registers,
      // With WORKERS: 1, not the number of workers (they serve the same configuration).
      aggregator: 'max',
      collect() {
        const classifier = models.classifier;
        this.reset();
        this.set({ backend: classifier.backend, layout: classifier.layout, precision: classifier.precision }, 1);
      },
    });
    // Counted by their sources; brought up to date when the metrics are read (by /metrics, or by prom-client's
    // cluster aggregation in the primary), so each collect() is its metric's own.
    let seenReloads = { success: 0, failure: 0 };
    new Counter({
      name: 'model_reloads_total',
      help: 'POST /reload_model, by result: success, failure',
      labelNames: ['result'],
      registers,
      collect() {
        const now = models.reloads;
        this.inc({ result: 'success' }, now.success - seenReloads.success);
        this.inc({ result: 'failure' }, now.failure - seenReloads.failure);
        seenReloads = { ...now };
      },
    });

    // The caches count their own hits and misses; the tokenizer's and the text features' belong to a classifier,
    // which a reload replaces (its counts start again at 0): counted as deltas per source object.
    type CacheState = { source: object; totals: Totals; size: number };
    const caches = (): Record<string, CacheState | undefined> => {
      const classifier = models.classifier;
      const tokens = classifier.tokenCache;
      const features = classifier.textFeatureCache;
      return {
        predictions: { source: cache, totals: cache.stats, size: cache.size },
        tokens: { source: classifier, totals: tokens, size: tokens.size },
        text_features: features && { source: classifier, totals: features, size: features.size },
      };
    };
    const seen = new WeakMap<object, Map<string, number>>();
    /** How much `field` of each cache grew since the last read. */
    const deltas = (field: 'hits' | 'misses'): [string, number][] =>
      Object.entries(caches()).map(([name, state]) => {
        if (!state) return [name, 0];
        const bySource = seen.get(state.source) ?? new Map<string, number>();
        seen.set(state.source, bySource);
        const key = `${name}:${field}`;
        const delta = Math.max(0, state.totals[field] - (bySource.get(key) ?? 0));
        bySource.set(key, state.totals[field]);
        return [name, delta];
      });
    for (const field of ['hits', 'misses'] as const) {
      new Counter({
        name: `cache_${field}_total`,
        help: `Cache ${field}: predictions, tokens, text_features`,
        labelNames: ['cache'],
        registers,
        collect() {
          for (const [name, delta] of deltas(field)) this.inc({ cache: name }, delta);
        },
      });
    }
    new Gauge({
      name: 'cache_entries',
      help: 'Entries in each cache now',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [name, state] of Object.entries(caches())) this.set({ cache: name }, state?.size ?? 0);
      },
    });
    let seenErrors = 0;
    new Counter({
      name: 'cache_errors_total',
      help: 'Prediction cache lookups and stores that failed (Redis down or slow): computed instead',
      labelNames: ['cache'],
      registers,
      collect() {
        this.inc({ cache: 'predictions' }, Math.max(0, cache.stats.errors - seenErrors));
        seenErrors = cache.stats.errors;
      },
    });
  }

  /** The text exposition (every metric's collect() brings its figures up to date). */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Middleware: counts and times every request, labelled by its route (not its URL: bounded label values). */
  httpMiddleware(): RequestHandler {
    return (req, res, next) => {
      const started = performance.now();
      // 'close' comes for every request, answered or not; one whose answer never finished (the client went
      // away) counts as 499, nginx's code for it.
      res.once('close', () => {
        const route = (req.route as { path?: string } | undefined)?.path ?? (req.path.startsWith('/docs') ? '/docs' : 'unmatched');
        const status = res.writableFinished ? String(res.statusCode) : '499';
        const labels = { route: typeof route === 'string' ? route : 'unmatched', method: req.method, status };
        this.#httpRequests.inc(labels);
        this.#httpDuration.observe(labels, (performance.now() - started) / 1000);
      });
      next();
    };
  }

  /** A forward's record (BatchScheduler's onBatch). */
  observeBatch(record: BatchRecord): void {
    const labels = { model: record.queue };
    this.#forward.observe(labels, record.forwardMs / 1000);
    this.#batchSize.observe(labels, record.size);
    for (const ms of record.waitedMs) this.#inferenceQueue.observe(labels, ms / 1000);
  }

  observePredict(queueMs: number | undefined, preprocessMs: number | undefined): void {
    if (queueMs !== undefined) this.#predictQueue.observe(queueMs / 1000);
    if (preprocessMs !== undefined) this.#preprocess.observe(preprocessMs / 1000);
  }

  rejected(reason: 'queue_full' | 'timeout'): void {
    this.#rejected.inc({ reason });
  }
}
