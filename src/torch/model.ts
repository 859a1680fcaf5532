import { availableParallelism } from 'node:os';
import path from 'node:path';

import type { InferenceModel, Inputs, ModelRuntime, ValueInfo } from '../model.js';
import { binding, type NativeModel, type NativeResult } from './binding.js';
import type { NativeArgument } from './forward-args.js';
import { TorchError } from './errors.js';
import { explainDtypeError, forwardArgs, inputInfos, ListBudget } from './forward-args.js';
import { ForwardTimer, loopPoller } from './short-wait.js';
import { Tensor, type DType, type DTypeArray } from './tensor.js';
import { checkInteger, checkKeys, invalid, isObject } from './validate.js';

/** `auto` picks the first CUDA device when LibTorch can use one, else the CPU. */
export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export interface LoadOptions {
  /** Where the model runs. Default `auto`. */
  device?: Device;
  /**
   * LibTorch's intra-op threads for this model's forwards. Default: the machine's available
   * parallelism (`os.availableParallelism()`).
   */
  threads?: number;
  /**
   * Freeze the module and apply `optimize_for_inference` (constant folding, conv/batch-norm fusion, faster
   * kernels). Default: on for CPU, off for CUDA. Outputs stay equal within float tolerance (1e-5).
   */
  optimize?: boolean;
  /**
   * Which thread runs this model's forwards (and its load's optimisation step). `'shared'`: the process's one
   * shared inference thread, with every other model that uses it (their forwards run one at a time). `'own'`:
   * a thread of the model's own, which ends when the model is disposed or collected; models on their own
   * threads run at once. Default `'auto'`: `'own'` when `threads` is below the machine's available parallelism
   * (two 1-thread models on 2 cores run side by side), else `'shared'`: past the core count, OpenMP's threads
   * stop spinning between parallel regions in every team, and small models run 2-3x slower.
   */
  inferenceThread?: InferenceThreadChoice;
  /**
   * Forwards to run before `load` resolves, so that the first real request does not pay for LibTorch's
   * lazy initialisation and the JIT's profiling runs (the first forward is several times slower).
   */
  warmup?: { inputs: Inputs; runs?: number };
}

export type InferenceThreadChoice = 'auto' | 'own' | 'shared';

export interface ModelInfo {
  /** The absolute path the model was loaded from. */
  path: string;
  /** `cpu` or `cuda:N`. */
  device: string;
  threads: number;
  optimized: boolean;
  /** Where its forwards run: on a thread of its own, or on the shared inference thread (`inferenceThread`). */
  inferenceThread: 'own' | 'shared';
  /** forward's TorchScript signature without `self`: `forward(Tensor image, Tensor input_ids) -> Tensor`. */
  forwardSchema: string;
  /** The names of forward's arguments, in order: `['image', 'input_ids', 'attention_mask']`. */
  inputNames: readonly string[];
  /** forward's arguments: name, TorchScript type (`Tensor`, `int`, ...), whether it has a default. */
  inputs: readonly ValueInfo[];
  /** forward's return type, as TorchScript writes it: `Tensor`, `Tuple[Tensor, Tensor]`, `Dict[str, Tensor]`. */
  outputType: string;
  /** The dtypes of the model's parameters and buffers (`float32`, ...), as loaded. */
  weightDtypes: readonly string[];
  libtorchVersion: string;
}

const LOAD_OPTIONS = ['device', 'threads', 'optimize', 'inferenceThread', 'warmup'] as const;
const DEVICE = /^(auto|cpu|cuda(:\d{1,3})?)$/;

/**
 * A TorchScript model loaded by LibTorch in this process.
 *
 * ```ts
 * const model = await TorchModel.load('models/best_model.pth', { device: 'auto' });
 * const [logits] = await model.forward([Tensor.float32(pixels, [1, 3, 224, 224])]);
 * await model.dispose();
 * ```
 *
 * Loading runs on the libuv pool and every forward on an inference thread of the addon's, so the event loop
 * keeps turning. A model's forwards run one at a time in the order they were called; models on the shared
 * inference thread take turns, a model on a thread of its own (`inferenceThread`) runs beside the others.
 * While a forward of a model whose forwards take under 0.25 ms is in flight, the event loop polls rather than
 * sleeps, so that the answer is taken at once (short-wait.ts).
 */
export class TorchModel implements InferenceModel {
  readonly #native: NativeModel;
  readonly #info: ModelInfo;
  readonly #args: readonly NativeArgument[];
  readonly #timer = new ForwardTimer();

  private constructor(native: NativeModel, libtorchVersion: string) {
    this.#native = native;
    const { disposed: _disposed, inputs, ...info } = native.info();
    this.#args = Object.freeze(inputs);
    this.#info = Object.freeze({ ...info, inputs: Object.freeze(inputInfos(inputs)), libtorchVersion });
  }

  /**
   * Loads a TorchScript file (saved with `torch.jit.save`), or one held in memory: a Buffer or Uint8Array of a
   * file's contents (copied as load() is called; `info.path` then reads `<N bytes in memory>`). Rejects with a
   * TorchError that says why not.
   */
  static load(file: string | Uint8Array, options: LoadOptions = {}): Promise<TorchModel> {
    const bytes = file instanceof Uint8Array ? file : undefined;
    if (!bytes && (typeof file !== 'string' || file.length === 0)) {
      invalid('a non-empty string or a Uint8Array (a Buffer)', 'the model path', file);
    }
    if (!isObject(options as unknown)) invalid('an object', 'options', options);
    checkKeys(options as Record<string, unknown>, LOAD_OPTIONS, 'the load options');
    const device = options.device ?? 'auto';
    if (typeof device !== 'string' || !DEVICE.test(device)) {
      invalid("'auto', 'cpu', 'cuda' or 'cuda:N'", 'device', device, typeof device === 'string' ? 'range' : 'type');
    }
    const threads = checkInteger(options.threads ?? availableParallelism(), 'threads', 1, 1024);
    if (options.optimize !== undefined && typeof options.optimize !== 'boolean') {
      invalid('a boolean', 'optimize', options.optimize);
    }
    const inferenceThread = options.inferenceThread ?? 'auto';
    if (inferenceThread !== 'auto' && inferenceThread !== 'own' && inferenceThread !== 'shared') {
      invalid("'auto', 'own' or 'shared'", 'inferenceThread', inferenceThread, typeof inferenceThread === 'string' ? 'range' : 'type');
    }
    const thread = inferenceThread === 'auto' ? (threads < availableParallelism() ? 'own' : 'shared') : inferenceThread;
    const warmup = checkWarmup(options.warmup);
    // Everything above throws at once; what follows is asynchronous.
    const where = bytes ? `<${bytes.length} bytes in memory>` : path.resolve(file as string);
    return TorchModel.#load(where, { device, threads, optimize: options.optimize, inferenceThread: thread, bytes }, warmup);
  }

  static async #load(
    file: string,
    options: { device: string; threads: number; optimize?: boolean; inferenceThread: 'own' | 'shared'; bytes?: Uint8Array },
    warmup: { inputs: Inputs; runs: number },
  ): Promise<TorchModel> {
    const { binding: native } = binding();
    const model = new TorchModel(await native.load(file, options), native.runtimeInfo().libtorchVersion);
    try {
      for (let i = 0; i < warmup.runs; i++) await model.forward(warmup.inputs);
    } catch (err) {
      await model.dispose();
      if (err instanceof TorchError) {
        throw new TorchError(`Warm-up forward of ${model.info.path} failed: ${err.message}`, err.code, err.details);
      }
      throw err;
    }
    return model;
  }

  get info(): ModelInfo {
    return this.#info;
  }

  get device(): string {
    return this.#info.device;
  }

  get runtime(): ModelRuntime {
    return { backend: 'torch', version: this.#info.libtorchVersion, threads: this.#info.threads };
  }

  get inputNames(): readonly string[] {
    return this.#info.inputNames;
  }

  /** Always []: a TorchScript schema names no outputs. A dict output's keys name its tensors (forwardNamed). */
  get outputNames(): readonly string[] {
    return [];
  }

  get inputs(): readonly ValueInfo[] {
    return this.#info.inputs;
  }

  /** Always [] (see outputNames); `info.outputType` is forward's return type. */
  get outputs(): readonly ValueInfo[] {
    return [];
  }

  /**
   * Runs the model's forward on `inputs`: in forward's order, or an object by argument name (`inputNames`;
   * arguments with a default may be left out). Tensors for `Tensor` arguments; numbers, bigints, booleans,
   * strings, arrays and null for `int`, `float`, `bool`, `str`, `List[...]` and `Optional[...]` ones (2^20 list
   * elements at most in all: larger data belongs in a Tensor). The
   * count and kinds are checked first (TypeError/RangeError, ERR_INVALID_ARGUMENT, thrown at once); the data is
   * copied as forward() is called. Resolves to the outputs as a list: a single tensor gives `[tensor]`, a tuple
   * or list gives its elements in order, a dict gives its values in order, each with its key as `name`.
   */
  forward(inputs: Inputs): Promise<Tensor[]> {
    return this.#run(inputs).then(toTensors);
  }

  /**
   * Runs a model whose forward returns a dict of string to tensor, and resolves to that dict (TorchScript
   * names no other outputs: other models reject with ERR_UNSUPPORTED_OUTPUT). Inputs as for forward().
   */
  forwardNamed(inputs: Inputs): Promise<Record<string, Tensor>> {
    return this.#run(inputs).then((result) => {
      if (result.kind !== 'dict') {
        throw new TorchError(
          `forwardNamed() needs a model that returns a dict, but ${this.#info.path} returned a ${result.kind}; use forward()`,
          'ERR_UNSUPPORTED_OUTPUT',
        );
      }
      return Object.fromEntries(toTensors(result).map((t) => [t.name as string, t]));
    });
  }

  /**
   * Frees the model once the forwards already called have finished (they complete normally). Later calls
   * reject with ERR_MODEL_DISPOSED. Disposing twice is harmless.
   */
  dispose(): Promise<void> {
    return this.#native.dispose();
  }

  get disposed(): boolean {
    return this.#native.info().disposed;
  }

  /** Argument mistakes throw here, synchronously, before anything is queued. */
  #run(inputs: Inputs): Promise<NativeResult> {
    const args = forwardArgs(inputs, this.#args);
    const timed = this.#timer.start();
    const answer = this.#native.forward(args);
    if (this.#timer.short) loopPoller.hold(answer);
    return answer.then(
      (result) => {
        timed();
        return result;
      },
      (err: unknown) => {
        throw explainDtypeError(err, args, this.#args, this.#info.weightDtypes);
      },
    );
  }
}

/**
 * Warm-up inputs, before the model (and so its schema) is there: an array or an object by name, of tensors and
 * plain values. The forwards check them against the schema as they run; a mistake there rejects the load.
 */
function checkInputs(inputs: unknown): asserts inputs is Inputs {
  if (!Array.isArray(inputs) && !isObject(inputs)) invalid('an array of inputs, or an object of inputs by name', 'inputs', inputs);
  const budget = new ListBudget(); // as many elements as a forward takes: an array shared many times ends here too
  const check = (value: unknown, where: string, depth = 0): void => {
    if (Array.isArray(value)) {
      // as deep as the addon takes lists (native/js_tensors.cc); an array that contains itself ends here too
      if (depth >= 4) invalid('at most 4 levels of arrays', where, value, 'range');
      budget.take(value.length, where);
      value.forEach((v, i) => {
        check(v, `${where}[${i}]`, depth + 1);
      });
    } else if (typeof value === 'object' && value !== null && !(value instanceof Tensor)) {
      invalid('a Tensor (Tensor.float32(data, shape), ...)', where, value);
    }
  };
  for (const [key, value] of Object.entries(inputs)) check(value, Array.isArray(inputs) ? `inputs[${key}]` : `inputs.${key}`);
}

function checkWarmup(warmup: LoadOptions['warmup']): { inputs: Inputs; runs: number } {
  if (warmup === undefined) return { inputs: [], runs: 0 };
  if (!isObject(warmup)) invalid('an object {inputs, runs}', 'warmup', warmup);
  checkKeys(warmup, ['inputs', 'runs'], 'warmup');
  checkInputs(warmup.inputs);
  return { inputs: warmup.inputs, runs: checkInteger(warmup.runs ?? 1, 'warmup.runs', 0, 1000) };
}

function toTensors(result: NativeResult): Tensor[] {
  // The addon pairs each dtype with its typed array (native/js_tensors.cc): the union type cannot see that.
  return result.tensors.map((t) => new Tensor(t.dtype, t.data as DTypeArray[DType], t.shape, t.name) as Tensor);
}
