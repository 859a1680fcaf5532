// The food classifier: a model folder loaded and ready to answer "what is in this photo?".
// Usable from a script without HTTP:
//   const classifier = await FoodClassifier.load(await readModelFolder('models'));
//   const top5 = await classifier.predict(jpegBytes, 'Image of food');
import { Tensor, TorchError, TorchModel, type Device } from '../index.js';
import { type Backend, type ModelFolder } from './model-folder.js';
import { preprocessImage } from './preprocess.js';
import { TextTokenizer } from './tokenizer.js';

/** What FoodClassifier needs of a model: TorchModel (LibTorch) and OnnxModel (ONNX Runtime) both are one. */
export interface InferenceModel {
  readonly device: string;
  forward(inputs: readonly Tensor[]): Promise<Tensor[]>;
  dispose(): Promise<void>;
}

export interface ClassifierOptions {
  /** Default `auto`. LibTorch only: ONNX Runtime runs on the CPU. */
  device?: Device;
  /** Intra-op threads of LibTorch or ONNX Runtime. Default: the machine's available parallelism. */
  threads?: number;
  /** Uploads with more pixels are refused (decompression bombs). Default: preprocessImage's. */
  maxPixels?: number;
  /** Texts whose tokens are cached. Default 1000, as the workshop's lru_cache. */
  tokenCacheSize?: number;
}

export interface Prediction {
  /** The class mapping's name, as is (e.g. `apple_pie`). */
  className: string;
  /** The index of the class (of its logit). */
  index: number;
  /** softmax of the logits. */
  probability: number;
}

export const DEFAULT_TEXT = 'Image of food';

export class FoodClassifier {
  readonly folder: ModelFolder;
  readonly #model: InferenceModel;
  readonly #tokenizer: TextTokenizer;
  readonly #maxPixels: number | undefined;
  #inFlight = 0;
  #retired: (() => void) | undefined;
  #retiring: Promise<void> | undefined;

  private constructor(folder: ModelFolder, model: InferenceModel, tokenizer: TextTokenizer, maxPixels?: number) {
    this.folder = folder;
    this.#model = model;
    this.#tokenizer = tokenizer;
    this.#maxPixels = maxPixels;
  }

  /**
   * Loads the model (off the JavaScript thread) with the backend the folder was read for (folder.backend),
   * and the vocabulary, then runs one warm-up prediction, which also checks that the model takes the
   * workshop's inputs and has one logit per class of the mapping.
   */
  static async load(folder: ModelFolder, options: ClassifierOptions = {}): Promise<FoodClassifier> {
    const [loaded, vocab] = await Promise.allSettled([
      loadModel(folder.backend, folder.backendFile, options),
      TextTokenizer.fromVocab(folder.vocabFile, { maxLength: folder.maxLength, cacheSize: options.tokenCacheSize ?? 1000 }),
    ]);
    if (vocab.status === 'rejected') {
      // The model loaded (or not) beside a vocabulary that did not: free it, or a failed reload would leak it.
      if (loaded.status === 'fulfilled') await loaded.value.dispose();
      throw vocab.reason;
    }
    if (loaded.status === 'rejected') throw loaded.reason;
    const [model, tokenizer] = [loaded.value, vocab.value];
    const classifier = new FoodClassifier(folder, model, tokenizer, options.maxPixels);
    try {
      const { crop } = folder.preprocessing;
      const image = Tensor.float32(new Float32Array(3 * crop * crop), [1, 3, crop, crop]);
      const [logits] = await model.forward([image, ...(await classifier.#textInputs(DEFAULT_TEXT))]);
      const expected = [1, folder.classNames.length];
      if (logits === undefined || logits.shape.join() !== expected.join()) {
        throw new TorchError(
          `${folder.backendFile} answers logits of shape [${logits?.shape.join(', ') ?? ''}] but ${folder.classMappingFile} ` +
            `has ${folder.classNames.length} classes (expected [${expected.join(', ')}]): the model and the class mapping do not belong together`,
          'ERR_MODEL_MISMATCH',
        );
      }
    } catch (err) {
      await model.dispose();
      throw err;
    }
    return classifier;
  }

  get device(): string {
    return this.#model.device;
  }

  get backend(): Backend {
    return this.folder.backend;
  }

  get numClasses(): number {
    return this.folder.classNames.length;
  }

  get tokenCache(): { size: number; hits: number; misses: number } {
    return this.#tokenizer.cacheStats;
  }

  /** The top `topK` classes for an image (its encoded bytes: JPEG, PNG, ...) and a text, most probable first. */
  async predict(image: Uint8Array, text: string = DEFAULT_TEXT, topK = 5): Promise<Prediction[]> {
    if (this.#retired) throw new TorchError('This classifier has been replaced and retired', 'ERR_MODEL_DISPOSED');
    this.#inFlight++;
    try {
      const { crop } = this.folder.preprocessing;
      // Decoding (libuv pool) and tokenising go side by side; the forward runs off the event loop (on the
      // addon's inference thread, or in ONNX Runtime's worker).
      const [pixels, textInputs] = await Promise.all([
        preprocessImage(image, { ...this.folder.preprocessing, ...(this.#maxPixels ? { maxPixels: this.#maxPixels } : {}) }),
        this.#textInputs(text),
      ]);
      const [logits] = await this.#model.forward([Tensor.float32(pixels, [1, 3, crop, crop]), ...textInputs]);
      return topClasses(softmax(logits.data as Float32Array), this.folder.classNames, topK);
    } finally {
      this.#settled();
    }
  }

  #settled(): void {
    if (--this.#inFlight === 0) this.#retired?.();
  }

  /**
   * Frees the model once the predictions already started have finished (a reload swaps in a new
   * classifier and retires the old one); new predictions are refused.
   */
  retire(): Promise<void> {
    this.#retiring ??= new Promise<void>((resolve) => {
      this.#retired = resolve;
      if (this.#inFlight === 0) resolve();
    }).then(() => this.#model.dispose());
    return this.#retiring;
  }

  async #textInputs(text: string): Promise<[Tensor<'int64'>, Tensor<'int64'>]> {
    const { inputIds, attentionMask } = await this.#tokenizer.encode(text);
    const shape = [1, this.folder.maxLength];
    return [Tensor.int64(inputIds, shape), Tensor.int64(attentionMask, shape)];
  }
}

async function loadModel(backend: Backend, file: string, options: ClassifierOptions): Promise<InferenceModel> {
  if (backend === 'onnx') {
    // Loaded on demand: a LibTorch service never loads ONNX Runtime.
    const { OnnxModel } = await import('../onnx/model.js');
    return OnnxModel.load(file, { threads: options.threads });
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
