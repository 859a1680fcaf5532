// How a classifier's model files turn a photo and a text into logits, in batches (batch-scheduler.ts):
//   WholePipeline   best_model.*: one forward of (images, input_ids, attention_mask) per batch.
//   SplitPipeline   text_encoder.* + head.*: the text encoder once per distinct text (text-features.ts keeps
//                   its output), then one forward of the head on (images, text features) per batch.
// Both backends' models are InferenceModels; a pipeline owns its models and disposes them.
import type { InferenceModel } from '../model.js';
import { Tensor } from '../torch/tensor.js';
import { BatchScheduler, type BatchQueue, type BatchRecord, type SubmitOptions } from './batch-scheduler.js';
import { TextFeatureCache, type TextFeatureStats } from './text-features.js';
import type { EncodedText } from './tokenizer.js';

/** What the classifier hands a pipeline for one photo. */
export interface PipelineShape {
  /** The side of the square crop: images are [3, crop, crop]. */
  crop: number;
  /** Token sequence length: input_ids and attention_mask are [maxLength]. */
  maxLength: number;
}

/** The text as a pipeline needs it: token ids for the whole model, features for the head. */
export type TextInput = { kind: 'tokens'; text: EncodedText } | { kind: 'features'; features: Float32Array; cached: boolean };

export interface Pipeline {
  readonly kind: 'whole' | 'parts';
  /** The most requests one forward takes. */
  readonly maxBatch: number;
  /** Prepares a text (for the parts: its features, from the cache or from one forward of the text encoder). */
  prepareText(text: EncodedText, options: SubmitOptions): Promise<TextInput>;
  /** The logits of one photo ([3, crop, crop] normalised pixels) with its prepared text. */
  logits(pixels: Float32Array, text: TextInput, options: SubmitOptions): Promise<Float32Array>;
  /** The text feature cache's figures (parts only). */
  readonly textFeatures: TextFeatureStats | undefined;
  /** Requests waiting for a forward. */
  readonly waiting: number;
  dispose(): Promise<void>;
}

export interface PipelineOptions {
  maxBatch: number;
  maxBatchDelayMs: number;
  textFeatureCacheSize: number;
  onBatch?: (record: BatchRecord) => void;
}

/** Copies equal-length token arrays one after another into one (the batch dimension first); a few KB. */
function stack(parts: readonly BigInt64Array[], make: typeof BigInt64Array): BigInt64Array {
  const size = parts[0].length;
  const out = new make(size * parts.length);
  for (const [i, part] of parts.entries()) out.set(part, i * size);
  return out;
}

/**
 * Reused arrays to stack float inputs into, one per batch size (a batch of n takes exactly n rows: ONNX
 * Runtime's worker receives a copy of the whole buffer, so a view into a larger one would copy too much).
 * A pipeline runs one forward at a time, and a backend is done with its inputs when the forward resolves, so
 * each array is free again by the next forward. Megabytes a forward that the garbage collector never sees.
 */
class StackBuffers {
  readonly #byBatch = new Map<number, Float32Array>();

  constructor(readonly rowLength: number) {}

  stack(parts: readonly Float32Array[]): Float32Array {
    let out = this.#byBatch.get(parts.length);
    if (!out) {
      out = new Float32Array(parts.length * this.rowLength);
      this.#byBatch.set(parts.length, out);
    }
    for (const [i, part] of parts.entries()) out.set(part, i * this.rowLength);
    return out;
  }
}

/** Row i of a [n, ...] tensor's data, copied (so that each request holds only its own row). */
function rows(data: Float32Array, n: number): Float32Array[] {
  const size = data.length / n;
  return Array.from({ length: n }, (_, i) => data.slice(i * size, (i + 1) * size));
}

function checkOutput(tensor: Tensor | undefined, expected: readonly number[], what: string): Float32Array {
  if (tensor?.dtype !== 'float32' || tensor.shape.join() !== expected.join()) {
    const got = tensor ? `${tensor.dtype} [${tensor.shape.join(', ')}]` : 'no output';
    throw new Error(`${what} gave ${got}; expected float32 [${expected.join(', ')}]`);
  }
  return tensor.data as Float32Array;
}

interface WholeItem {
  pixels: Float32Array;
  text: EncodedText;
}

export class WholePipeline implements Pipeline {
  readonly kind = 'whole';
  readonly textFeatures = undefined;
  readonly maxBatch: number;
  readonly #scheduler: BatchScheduler;
  readonly #queue: BatchQueue<WholeItem, Float32Array>;
  readonly #images: StackBuffers;

  constructor(
    private readonly model: InferenceModel,
    private readonly shape: PipelineShape,
    private readonly numClasses: number,
    options: PipelineOptions,
  ) {
    this.#images = new StackBuffers(3 * shape.crop * shape.crop);
    this.maxBatch = options.maxBatch;
    this.#scheduler = new BatchScheduler({ maxBatch: options.maxBatch, maxDelayMs: options.maxBatchDelayMs }, options.onBatch);
    this.#queue = this.#scheduler.queue('model', (items) => this.#forward(items));
  }

  async prepareText(text: EncodedText): Promise<TextInput> {
    return { kind: 'tokens', text };
  }

  logits(pixels: Float32Array, text: TextInput, options: SubmitOptions): Promise<Float32Array> {
    if (text.kind !== 'tokens') throw new TypeError('The whole model takes token ids');
    return this.#queue.submit({ pixels, text: text.text }, options);
  }

  get waiting(): number {
    return this.#scheduler.waiting;
  }

  async #forward(items: WholeItem[]): Promise<Float32Array[]> {
    const n = items.length;
    const { crop, maxLength } = this.shape;
    const [logits] = await this.model.forward([
      Tensor.float32(this.#images.stack(items.map((i) => i.pixels)), [n, 3, crop, crop]),
      Tensor.int64(
        stack(
          items.map((i) => i.text.inputIds),
          BigInt64Array,
        ),
        [n, maxLength],
      ),
      Tensor.int64(
        stack(
          items.map((i) => i.text.attentionMask),
          BigInt64Array,
        ),
        [n, maxLength],
      ),
    ]);
    return rows(checkOutput(logits, [n, this.numClasses], 'The model'), n);
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}

interface HeadItem {
  pixels: Float32Array;
  features: Float32Array;
}

export class SplitPipeline implements Pipeline {
  readonly kind = 'parts';
  readonly maxBatch: number;
  readonly #scheduler: BatchScheduler;
  readonly #textQueue: BatchQueue<EncodedText, Float32Array>;
  readonly #headQueue: BatchQueue<HeadItem, Float32Array>;
  readonly #cache: TextFeatureCache;
  readonly #images: StackBuffers;
  readonly #features: StackBuffers;

  /** `featureShape`: the text encoder's output for one text, [maxLength, hidden] (known from the warm-up). */
  constructor(
    private readonly textEncoder: InferenceModel,
    private readonly head: InferenceModel,
    private readonly shape: PipelineShape & { hidden: number },
    private readonly numClasses: number,
    options: PipelineOptions,
  ) {
    this.#images = new StackBuffers(3 * shape.crop * shape.crop);
    this.#features = new StackBuffers(shape.maxLength * shape.hidden);
    this.maxBatch = options.maxBatch;
    this.#scheduler = new BatchScheduler({ maxBatch: options.maxBatch, maxDelayMs: options.maxBatchDelayMs }, options.onBatch);
    this.#textQueue = this.#scheduler.queue('text_encoder', (items) => this.#encode(items));
    this.#headQueue = this.#scheduler.queue('head', (items) => this.#classify(items));
    this.#cache = new TextFeatureCache(options.textFeatureCacheSize);
  }

  async prepareText(text: EncodedText, options: SubmitOptions): Promise<TextInput> {
    const key = TextFeatureCache.key(text.inputIds, text.length);
    // The text's wait is part of the request's, but its forward is not the request's forward (onStart).
    const { features, cached } = await this.#cache.get(key, () => this.#textQueue.submit(text, { deadline: options.deadline }));
    return { kind: 'features', features, cached };
  }

  logits(pixels: Float32Array, text: TextInput, options: SubmitOptions): Promise<Float32Array> {
    if (text.kind !== 'features') throw new TypeError('The head takes text features');
    return this.#headQueue.submit({ pixels, features: text.features }, options);
  }

  get textFeatures(): TextFeatureStats {
    return this.#cache.stats;
  }

  /** Keeps features computed elsewhere (the warm-up's, for the default text) as if computed here. */
  remember(text: EncodedText, features: Float32Array): void {
    this.#cache.put(TextFeatureCache.key(text.inputIds, text.length), features);
  }

  get waiting(): number {
    return this.#scheduler.waiting;
  }

  async #encode(items: EncodedText[]): Promise<Float32Array[]> {
    const n = items.length;
    const { maxLength, hidden } = this.shape;
    const [features] = await this.textEncoder.forward([
      Tensor.int64(
        stack(
          items.map((t) => t.inputIds),
          BigInt64Array,
        ),
        [n, maxLength],
      ),
      Tensor.int64(
        stack(
          items.map((t) => t.attentionMask),
          BigInt64Array,
        ),
        [n, maxLength],
      ),
    ]);
    return rows(checkOutput(features, [n, maxLength, hidden], 'The text encoder'), n);
  }

  async #classify(items: HeadItem[]): Promise<Float32Array[]> {
    const n = items.length;
    const { crop, maxLength, hidden } = this.shape;
    const [logits] = await this.head.forward([
      Tensor.float32(this.#images.stack(items.map((i) => i.pixels)), [n, 3, crop, crop]),
      Tensor.float32(this.#features.stack(items.map((i) => i.features)), [n, maxLength, hidden]),
    ]);
    return rows(checkOutput(logits, [n, this.numClasses], 'The head'), n);
  }

  async dispose(): Promise<void> {
    this.#cache.clear();
    await Promise.all([this.textEncoder.dispose(), this.head.dispose()]);
  }
}
