// The food classifier: a model folder loaded and ready to answer "what is in this photo?".
// Usable from a script without HTTP:
//   const classifier = await FoodClassifier.load(await readModelFolder('models'));
//   const top5 = await classifier.predict(jpegBytes, 'Image of food');
//
// A prediction decodes the photo (sharp, on the libuv pool) while the text is tokenised and, with a model in two
// parts, its features are looked up or computed (once per distinct text); the photo then waits for the next
// forward, which takes every request waiting at that moment, up to maxBatch (pipelines.ts).
import { Tensor, TorchModel, type Device } from '../index.js';
import { type InferenceModel, ModelError, type ModelRuntime } from '../model.js';
import type { BatchRecord } from './batch-scheduler.js';
import { layoutFiles, type Backend, type ModelFolder, type Precision } from './model-folder.js';
import { Float32ArrayPool } from './array-pool.js';
import { modelContentId } from './model-id.js';
import { DecodeLanes } from './decode-lanes.js';
import { SplitPipeline, WholePipeline, type Pipeline } from './pipelines.js';
import { preprocessImage } from './preprocess.js';
import type { TextFeatureStats } from './text-features.js';
import { TextTokenizer } from './tokenizer.js';

export type { InferenceModel } from '../model.js';

export interface ClassifierOptions {
  /** Default `auto`. LibTorch only: ONNX Runtime runs on the CPU. */
  device?: Device;
  /** Intra-op threads of LibTorch or ONNX Runtime. Default: the machine's available parallelism. */
  threads?: number;
  /** Uploads with more pixels are refused (decompression bombs). Default: preprocessImage's. */
  maxPixels?: number;
  /** Uploads that would take more memory to decode are refused. Default: preprocessImage's (256 MiB). */
  maxDecodeBytes?: number;
  /** Large images (decode-lanes.ts) decoded at once. Default 1. */
  maxLargeDecodes?: number;
  /** Texts whose tokens are cached. Default 1000, as the workshop's lru_cache. */
  tokenCacheSize?: number;
  /** With a model in two parts: texts whose features are kept (LRU). Default 128 (see DEFAULT_TEXT_FEATURE_CACHE_SIZE). */
  textFeatureCacheSize?: number;
  /** The most photos (or texts) one forward computes. Default 8. */
  maxBatch?: number;
  /** How long a request that finds the model idle waits for others to batch with, in ms. Default 0. */
  maxBatchDelayMs?: number;
  /** Called after every forward (for metrics): which queue, how many requests, their waits, the forward's time. */
  onBatch?: (record: BatchRecord) => void;
  /**
   * ONNX Runtime on Linux: how much lower than the event loop's the priority (nice value) of the forwards'
   * threads is. Default 0; the service sets 10, so that requests are answered at once while the cores compute.
   */
  computeNiceness?: number;
}

/** 128 texts: 48 MiB with BERT-base's features (128 tokens x 768 x 4 bytes = 384 KiB a text). */
export const DEFAULT_TEXT_FEATURE_CACHE_SIZE = 128;
export const DEFAULT_MAX_BATCH = 8;
export const DEFAULT_MAX_BATCH_DELAY_MS = 0;

export interface Prediction {
  /** The class mapping's name, as is (e.g. `apple_pie`). */
  className: string;
  /** The index of the class (of its logit). */
  index: number;
  /** softmax of the logits. */
  probability: number;
}

export interface ClassifyOptions {
  /** How many classes, most probable first. Default 5. */
  topK?: number;
  /** performance.now() after which a request still waiting for a forward is rejected (QueueError ERR_QUEUE_TIMEOUT). */
  deadline?: number;
  /** Called when the forward that computes this photo starts. */
  onForwardStart?: () => void;
}

export interface Classification {
  predictions: Prediction[];
  /** Milliseconds spent decoding and preprocessing the photo (on the libuv pool). */
  preprocessMs: number;
  /** With a model in two parts: whether the text's features came from the cache (or a computation in flight). */
  textFeaturesCached: boolean | undefined;
}

export const DEFAULT_TEXT = 'Image of food';

export class FoodClassifier {
  readonly folder: ModelFolder;
  /** SHA-256 of the files the model runs from (model-id.ts): equal for equal files, wherever they are. */
  readonly modelId: string;
  readonly #pipeline: Pipeline;
  readonly #runtime: ModelRuntime;
  readonly #device: string;
  readonly #tokenizer: TextTokenizer;
  readonly #limits: { maxPixels?: number; maxDecodeBytes?: number };
  readonly #lanes: DecodeLanes;
  /** The photos' model inputs, reused from one request to the next (see array-pool.ts). */
  readonly #pixels: Float32ArrayPool;
  /** Predictions started and holds taken (acquire()) not yet over: the models stay loaded while any is. */
  #inFlight = 0;
  /** Set by retire(): called when #inFlight falls to zero (it sets #freed). */
  #retired: (() => void) | undefined;
  #retiring: Promise<void> | undefined;
  /** True once retire() has seen #inFlight at zero: the models are being freed, nothing may start. */
  #freed = false;

  private constructor(folder: ModelFolder, modelId: string, pipeline: Pipeline, model: InferenceModel, tokenizer: TextTokenizer, options: ClassifierOptions) {
    this.folder = folder;
    this.modelId = modelId;
    this.#pipeline = pipeline;
    this.#runtime = model.runtime;
    this.#device = model.device;
    this.#tokenizer = tokenizer;
    this.#limits = {
      ...(options.maxPixels ? { maxPixels: options.maxPixels } : {}),
      ...(options.maxDecodeBytes ? { maxDecodeBytes: options.maxDecodeBytes } : {}),
    };
    this.#lanes = new DecodeLanes(options.maxLargeDecodes ?? 1);
    const { crop } = folder.preprocessing;
    // Enough for two full batches in flight besides the one computing; beyond, arrays are made and dropped.
    this.#pixels = new Float32ArrayPool(3 * crop * crop, 2 * pipeline.maxBatch + 4);
  }

  /**
   * Loads the model files (off the JavaScript thread) with the backend and layout the folder was read for, and
   * the vocabulary, then runs one warm-up prediction, which also checks that the model takes the workshop's
   * inputs and has one logit per class of the mapping.
   */
  static async load(folder: ModelFolder, options: ClassifierOptions = {}): Promise<FoodClassifier> {
    const files = layoutFiles(folder.layout);
    const identity = [...files, folder.classMappingFile, folder.vocabFile, ...(folder.metadataFile ? [folder.metadataFile] : [])];
    const [loaded, vocab, modelId] = await Promise.all([
      Promise.allSettled(files.map((file) => loadModel(folder.backend, file, options))),
      TextTokenizer.fromVocab(folder.vocabFile, { maxLength: folder.maxLength, cacheSize: options.tokenCacheSize ?? 1000 }).then(
        (tokenizer) => ({ status: 'fulfilled' as const, value: tokenizer }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      ),
      // The same pass checks each file against model.json's SHA-256 (ERR_MODEL_CHECKSUM).
      modelContentId(identity, folder.checksums).then(
        (id) => ({ status: 'fulfilled' as const, value: id }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      ),
    ]);
    const models = loaded.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = [...loaded, vocab, modelId].find((r) => r.status === 'rejected');
    if (failed) {
      // Free what did load, or a failed reload would leak it.
      await Promise.all(models.map((m) => m.dispose()));
      throw failed.reason;
    }
    const tokenizer = (vocab as { value: TextTokenizer }).value;
    try {
      const pipeline = await FoodClassifier.#warmUp(folder, models, tokenizer, options);
      return new FoodClassifier(folder, (modelId as { value: string }).value, pipeline, models[0], tokenizer, options);
    } catch (err) {
      await Promise.all(models.map((m) => m.dispose()));
      throw err;
    }
  }

  /** One forward of each file on a blank photo and the default text: checks the shapes, builds the pipeline. */
  static async #warmUp(folder: ModelFolder, models: InferenceModel[], tokenizer: TextTokenizer, options: ClassifierOptions): Promise<Pipeline> {
    const { crop } = folder.preprocessing;
    const C = folder.classNames.length;
    const L = folder.maxLength;
    const settings = {
      maxBatch: options.maxBatch ?? DEFAULT_MAX_BATCH,
      maxBatchDelayMs: options.maxBatchDelayMs ?? DEFAULT_MAX_BATCH_DELAY_MS,
      textFeatureCacheSize: options.textFeatureCacheSize ?? DEFAULT_TEXT_FEATURE_CACHE_SIZE,
      onBatch: options.onBatch,
    };
    const image = Tensor.float32(new Float32Array(3 * crop * crop), [1, 3, crop, crop]);
    const encoded = await tokenizer.encode(DEFAULT_TEXT);
    const ids = Tensor.int64(encoded.inputIds, [1, L]);
    const mask = Tensor.int64(encoded.attentionMask, [1, L]);
    const mismatch = (file: string, shape: readonly number[] | undefined) =>
      new ModelError(
        `${file} answers logits of shape [${shape?.join(', ') ?? ''}] but ${folder.classMappingFile} ` +
          `has ${C} classes (expected [1, ${C}]): the model and the class mapping do not belong together`,
        'ERR_MODEL_MISMATCH',
      );
    if (folder.layout.kind === 'whole') {
      const [logits] = await models[0].forward([image, ids, mask]);
      if (logits?.shape.join() !== [1, C].join()) throw mismatch(folder.layout.modelFile, logits?.shape);
      return new WholePipeline(models[0], { crop, maxLength: L }, C, settings);
    }
    const [textEncoder, head] = models;
    const [features] = await textEncoder.forward([ids, mask]);
    if (features?.dtype !== 'float32' || features.shape.length !== 3 || features.shape[0] !== 1 || features.shape[1] !== L) {
      throw new ModelError(
        `${folder.layout.textEncoderFile} answers text features of shape [${features?.shape.join(', ') ?? ''}] ` +
          `(${features?.dtype ?? 'no output'}); expected float32 [1, ${L}, hidden]: it is not the text encoder of this folder's model`,
        'ERR_MODEL_MISMATCH',
      );
    }
    const [logits] = await head.forward([image, features]);
    if (logits?.shape.join() !== [1, C].join()) throw mismatch(folder.layout.headFile, logits?.shape);
    const pipeline = new SplitPipeline(textEncoder, head, { crop, maxLength: L, hidden: features.shape[2] }, C, settings);
    // The default text comes with almost every request: its features are known already.
    pipeline.remember(encoded, (features.data as Float32Array).slice());
    return pipeline;
  }

  get device(): string {
    return this.#device;
  }

  get backend(): Backend {
    return this.folder.backend;
  }

  /** fp32, or int8 (the folder's int8 variant: see model-folder.ts). */
  get precision(): Precision {
    return this.folder.precision;
  }

  /** The backend's version and the threads of its forwards. */
  get runtime(): ModelRuntime {
    return this.#runtime;
  }

  /** `whole` (best_model.*) or `parts` (text_encoder.* + head.*). */
  get layout(): 'whole' | 'parts' {
    return this.#pipeline.kind;
  }

  get numClasses(): number {
    return this.folder.classNames.length;
  }

  get tokenCache(): { size: number; maxSize: number; hits: number; misses: number } {
    return this.#tokenizer.cacheStats;
  }

  /** The text feature cache's figures, with a model in two parts. */
  get textFeatureCache(): TextFeatureStats | undefined {
    return this.#pipeline.textFeatures;
  }

  /** Photos (and texts) waiting for a forward. */
  get waiting(): number {
    return this.#pipeline.waiting;
  }

  /** Large images decoding now, and waiting for a lane (decode-lanes.ts). */
  get largeDecodes(): { running: number; waiting: number } {
    return this.#lanes.stats;
  }

  /** The top `topK` classes for an image (its encoded bytes: JPEG, PNG, ...) and a text, most probable first. */
  async predict(image: Uint8Array, text: string = DEFAULT_TEXT, topK = 5): Promise<Prediction[]> {
    return (await this.classify(image, text, { topK })).predictions;
  }

  /** predict(), with a deadline for the wait, and what it took. */
  async classify(image: Uint8Array, text: string = DEFAULT_TEXT, options: ClassifyOptions = {}): Promise<Classification> {
    const release = this.acquire();
    const pixels = this.#pixels.acquire();
    try {
      const started = performance.now();
      let preprocessMs = 0;
      // Decoding (libuv pool) and the text (tokens, then features) go side by side. Both are waited for, even
      // when one fails: the decoder writes into `pixels`, which must not go back to the pool before it is done.
      const [decoded, prepared] = await Promise.allSettled([
        preprocessImage(image, { ...this.folder.preprocessing, ...this.#limits }, { into: pixels, gate: this.#lanes.gate(options.deadline) }).then(() => {
          preprocessMs = performance.now() - started;
        }),
        this.#tokenizer.encode(text).then((encoded) => this.#pipeline.prepareText(encoded, { deadline: options.deadline })),
      ]);
      if (decoded.status === 'rejected') throw decoded.reason;
      if (prepared.status === 'rejected') throw prepared.reason;
      const textInput = prepared.value;
      // Resolved once the forward is over: the pipeline has copied `pixels` into its batch by then.
      const logits = await this.#pipeline.logits(pixels, textInput, { deadline: options.deadline, onStart: options.onForwardStart });
      return {
        predictions: topClasses(softmax(logits), this.folder.classNames, options.topK ?? 5),
        preprocessMs,
        textFeaturesCached: textInput.kind === 'features' ? textInput.cached : undefined,
      };
    } finally {
      this.#pixels.release(pixels);
      release();
    }
  }

  /**
   * Holds the models loaded until the returned function is called (once; later calls do nothing), even if
   * the classifier is retired meanwhile: a request takes its classifier and this hold together, before any
   * await, so that a reload during its first awaits (the cache) cannot free the model it is about to use.
   * Throws ERR_MODEL_DISPOSED once the classifier has been retired and every earlier hold has ended.
   */
  acquire(): () => void {
    if (this.#freed) throw new ModelError('This classifier has been replaced and retired', 'ERR_MODEL_DISPOSED');
    this.#inFlight++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--this.#inFlight === 0) this.#retired?.();
    };
  }

  /**
   * Frees the models once the predictions already started, and the holds already taken (acquire()), have
   * ended (a reload swaps in a new classifier and retires the old one). Until then a holder may still predict;
   * from then on, acquire() and predict() are refused (ERR_MODEL_DISPOSED).
   */
  retire(): Promise<void> {
    this.#retiring ??= new Promise<void>((resolve) => {
      // #freed is set at the very moment the last hold ends, before anything else can run: no acquire() after
      // it gets through to models that are being freed.
      this.#retired = () => {
        this.#freed = true;
        resolve();
      };
      if (this.#inFlight === 0) this.#retired();
    }).then(() => this.#pipeline.dispose());
    return this.#retiring;
  }
}

async function loadModel(backend: Backend, file: string, options: ClassifierOptions): Promise<InferenceModel> {
  if (backend === 'onnx') {
    // Loaded on demand: a LibTorch service never loads ONNX Runtime.
    const { OnnxModel } = await import('../onnx/model.js');
    // Spinning off: the service's sessions share the cores with each other (head and text encoder) and with
    // image decoding; busy-waiting threads of one would slow the others (the full-size model, a new text on
    // every request, one at a time: 7.0 req/s with spinning, 11.0 without, side by side with bench/load-client.ts;
    // 6.5 and 10.0 in two runs of npm run bench).
    return OnnxModel.load(file, { threads: options.threads, niceness: options.computeNiceness ?? 0, spinning: false });
  }
  return TorchModel.load(file, { device: options.device ?? 'auto', threads: options.threads });
}

/** Probabilities of logits, computed in float64 after subtracting the largest logit (no overflow). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** The k most probable classes, most probable first (ties: the lower index first, as torch.topk). */
export function topClasses(probabilities: ArrayLike<number>, classNames: readonly string[], k: number): Prediction[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i);
  order.sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return order.slice(0, Math.min(k, order.length)).map((index) => ({
    className: classNames[index],
    index,
    probability: probabilities[index],
  }));
}
