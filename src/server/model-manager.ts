// The classifier the service answers with, and its replacement by /reload_model: the new model folder is read,
// loaded and warmed up while the current classifier keeps serving; only on success is the reference swapped
// and the generation bumped (the prediction cache keys on it). The old classifier is retired: it finishes the
// predictions it has started, then frees its model. A failed reload changes nothing.
import { existsSync } from 'node:fs';

import type { Logger } from 'pino';

import type { BatchRecord } from '../classifier/batch-scheduler.js';
import { FoodClassifier } from '../classifier/classifier.js';
import { readModelFolder } from '../classifier/model-folder.js';
import { releaseFreeMemory } from '../process-memory.js';
import { threadsPerWorker } from './cluster.js';
import type { ServiceConfig } from './config.js';
import { BACKGROUND_NICENESS } from '../thread-priority.js';

export interface ModelManagerOptions {
  /** Every forward's record, for metrics. */
  onBatch?: (record: BatchRecord) => void;
}

export class ModelManager {
  #current: FoodClassifier;
  #generation = 1;
  /** Reloads run one after another, each reading the files as they are when it starts. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The reload waiting for the running one to end, if any: later requests join it (at most one waits). */
  #waiting: Promise<{ generation: number; loadMs: number }> | undefined;
  readonly #config: ServiceConfig;
  readonly #logger: Logger;
  readonly #options: ModelManagerOptions;
  readonly #retiring = new Set<Promise<void>>();
  readonly #reloads = { success: 0, failure: 0 };

  private constructor(classifier: FoodClassifier, config: ServiceConfig, logger: Logger, options: ModelManagerOptions) {
    this.#current = classifier;
    this.#config = config;
    this.#logger = logger;
    this.#options = options;
  }

  /** Reads the configured model folder and loads it; rejects (naming the file at fault) when it cannot. */
  static async load(config: ServiceConfig, logger: Logger, options: ModelManagerOptions = {}): Promise<ModelManager> {
    const classifier = await loadClassifier(config, options);
    releaseFreeMemory();
    return new ModelManager(classifier, config, logger, options);
  }

  /** The classifier to use now. Call its predict() at once: a retired classifier refuses new predictions. */
  get classifier(): FoodClassifier {
    return this.#current;
  }

  /** 1 at start, +1 on every successful reload. */
  get generation(): number {
    return this.#generation;
  }

  /** Reloads so far, by result. */
  get reloads(): Readonly<{ success: number; failure: number }> {
    return this.#reloads;
  }

  /**
   * Loads the model folder again and swaps it in; rejects, leaving the current one serving, on failure. A call
   * while a reload runs queues one more (which reads the files as they are when it starts); calls while that
   * one waits share it: however many reloads are asked for, at most one runs and one waits.
   */
  reload(): Promise<{ generation: number; loadMs: number }> {
    if (this.#waiting) return this.#waiting;
    const run = this.#queue.then(async () => {
      this.#waiting = undefined;
      const started = performance.now();
      let next: FoodClassifier;
      try {
        next = await loadClassifier(this.#config, this.#options);
      } catch (err) {
        this.#reloads.failure++;
        throw err;
      }
      releaseFreeMemory();
      const previous = this.#current;
      this.#current = next;
      this.#generation++;
      this.#reloads.success++;
      this.#retire(previous);
      return { generation: this.#generation, loadMs: performance.now() - started };
    });
    this.#waiting = run;
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Waits for reloads under way, then retires the current classifier (after its predictions in flight). */
  async close(): Promise<void> {
    await this.#queue;
    this.#retire(this.#current);
    await Promise.all(this.#retiring);
  }

  #retire(classifier: FoodClassifier): void {
    const done = classifier
      .retire()
      .then(() => void releaseFreeMemory())
      .catch((err: unknown) => this.#logger.error({ err }, 'freeing a replaced model failed'))
      .finally(() => this.#retiring.delete(done));
    this.#retiring.add(done);
  }
}

/**
 * Whether LibTorch should run the model even where ONNX Runtime could (BACKEND=auto): when a CUDA device is
 * asked for, or, with DEVICE=auto, when an NVIDIA driver is present (ONNX Runtime's Node build is CPU only).
 */
export function wantsCuda(device: ServiceConfig['device']): boolean {
  if (device.startsWith('cuda')) return true;
  return device === 'auto' && existsSync('/proc/driver/nvidia/version');
}

async function loadClassifier(config: ServiceConfig, options: ModelManagerOptions): Promise<FoodClassifier> {
  const folder = await readModelFolder(config.modelDir, {
    backend: config.backend,
    preferTorch: wantsCuda(config.device),
    modelFile: config.modelFile,
    onnxFile: config.onnxFile,
    classMappingFile: config.classMappingFile,
    vocabFile: config.vocabFile,
    // The configured precision, at start and at every reload (auto decides again on the folder as it is then).
    precision: config.precision,
  });
  return FoodClassifier.load(folder, {
    device: config.device,
    threads: threadsPerWorker(config),
    maxPixels: config.maxImagePixels,
    maxDecodeBytes: config.maxDecodeBytes,
    maxLargeDecodes: config.maxLargeDecodes,
    tokenCacheSize: config.tokenCacheSize,
    textFeatureCacheSize: config.textFeatureCacheSize,
    maxBatch: config.maxBatch,
    maxBatchDelayMs: config.maxBatchDelayMs,
    onBatch: options.onBatch,
    // The forwards yield the cores to the event loop: /health and cached answers stay fast under load.
    computeNiceness: BACKGROUND_NICENESS,
  });
}
