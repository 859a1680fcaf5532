// The classifier the service answers with, and its replacement by /reload_model: the new model folder is read,
// loaded and warmed up while the current classifier keeps serving; only on success is the reference swapped
// and the generation bumped (the prediction cache keys on it). The old classifier is retired: it finishes the
// predictions it has started, then frees its model. A failed reload changes nothing.
import type { Logger } from 'pino';

import { FoodClassifier } from '../classifier/classifier.js';
import { readModelFolder } from '../classifier/model-folder.js';
import type { ServiceConfig } from './config.js';

export class ModelManager {
  #current: FoodClassifier;
  #generation = 1;
  /** Reloads run one after another, each reading the files as they are when it starts. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #config: ServiceConfig;
  readonly #logger: Logger;
  readonly #retiring = new Set<Promise<void>>();

  private constructor(classifier: FoodClassifier, config: ServiceConfig, logger: Logger) {
    this.#current = classifier;
    this.#config = config;
    this.#logger = logger;
  }

  /** Reads the configured model folder and loads it; rejects (naming the file at fault) when it cannot. */
  static async load(config: ServiceConfig, logger: Logger): Promise<ModelManager> {
    return new ModelManager(await loadClassifier(config), config, logger);
  }

  /** The classifier to use now. Call its predict() at once: a retired classifier refuses new predictions. */
  get classifier(): FoodClassifier {
    return this.#current;
  }

  /** 1 at start, +1 on every successful reload. */
  get generation(): number {
    return this.#generation;
  }

  /** Loads the model folder again and swaps it in; rejects, leaving the current one serving, on failure. */
  reload(): Promise<{ generation: number; loadMs: number }> {
    const run = this.#queue.then(async () => {
      const started = performance.now();
      const next = await loadClassifier(this.#config);
      const previous = this.#current;
      this.#current = next;
      this.#generation++;
      this.#retire(previous);
      return { generation: this.#generation, loadMs: performance.now() - started };
    });
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
      .catch((err: unknown) => this.#logger.error({ err }, 'freeing a replaced model failed'))
      .finally(() => this.#retiring.delete(done));
    this.#retiring.add(done);
  }
}

async function loadClassifier(config: ServiceConfig): Promise<FoodClassifier> {
  const folder = await readModelFolder(config.modelDir, {
    backend: config.backend,
    modelFile: config.modelFile,
    onnxFile: config.onnxFile,
    classMappingFile: config.classMappingFile,
    vocabFile: config.vocabFile,
  });
  return FoodClassifier.load(folder, {
    device: config.device,
    threads: config.threads,
    maxPixels: config.maxImagePixels,
    tokenCacheSize: config.tokenCacheSize,
  });
}
