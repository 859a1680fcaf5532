// An ONNX model run by ONNX Runtime (onnxruntime-node), behind the same interface as TorchModel: positional
// tensors in, a list of tensors out, dispose() after the calls in flight.
//
// ONNX Runtime's Node binding computes on the thread that calls session.run() and blocks it until the forward
// is done. By default (`thread: 'worker'`) the session therefore lives in a worker thread of its own and the
// event loop stays free; `thread: 'main'` runs it on the calling thread, for comparison (see `npm run bench`).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';

import * as ort from 'onnxruntime-node';

import { type InferenceModel, type Inputs, type InputValue, ModelError, type ModelRuntime, type ValueInfo } from '../model.js';
import { startWorker } from '../worker-thread.js';
import { Tensor } from '../torch/tensor.js';
import { argumentError, checkInteger, checkKeys, inputLabel, invalid, isObject, positionalInputs } from '../torch/validate.js';
import {
  type OnnxValueInfo,
  runSession,
  sessionOptions,
  toTensor,
  valueInfos,
  type Reply,
  type Request,
  type SessionSettings,
  type WireTensor,
} from './protocol.js';

export interface OnnxLoadOptions {
  /**
   * Where the model runs: `'cpu'`, or `'auto'` (the CPU). The library runs onnxruntime-node's CPU execution
   * provider only: `'cuda'` and `'cuda:N'` reject with ERR_UNSUPPORTED_DEVICE (TorchModel runs on CUDA).
   */
  device?: 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;
  /** ONNX Runtime's intra-op threads. Default: the machine's available parallelism, as TorchModel. */
  threads?: number;
  /** Where session.run() blocks: a worker thread of the model's own (default), or the calling thread. */
  thread?: 'worker' | 'main';
  /**
   * Linux, thread 'worker': how much to raise the nice value of the session's threads (0 to 19; default 0).
   * A service gives its forwards a lower priority than its event loop, so that requests are read and answered
   * (a health check, a cached answer) at once even while the cores compute; on an idle machine it changes
   * nothing.
   */
  niceness?: number;
  /**
   * Whether the session's threads busy-wait for a while after each parallel section (ONNX Runtime's default,
   * true), which saves a little latency on an otherwise idle machine; false lets them sleep at once, which is
   * better wherever other work shares the cores: a second session, image decoding (the service sets false).
   */
  spinning?: boolean;
}

export interface OnnxModelInfo {
  path: string;
  device: 'cpu';
  threads: number;
  thread: 'worker' | 'main';
  spinning: boolean;
  inputNames: readonly string[];
  outputNames: readonly string[];
  /** The graph's inputs: name, dtype, shape (a string for a named dimension such as `batch`). */
  inputs: readonly ValueInfo[];
  /** The graph's outputs, likewise. */
  outputs: readonly ValueInfo[];
  onnxruntimeVersion: string;
}

const DEVICE = /^(auto|cpu|cuda(:\d{1,3})?)$/;

/** A worker running session-worker. */
function sessionWorker(): Worker {
  return startWorker('./session-worker', import.meta.url);
}

export class OnnxModel implements InferenceModel {
  readonly backend = 'onnx';
  readonly #info: OnnxModelInfo;
  readonly #runner: Runner;
  #disposed: Promise<void> | undefined;

  private constructor(info: OnnxModelInfo, runner: Runner) {
    this.#info = info;
    this.#runner = runner;
  }

  /**
   * Loads an .onnx file (exported by scripts/export_model.py, or any other), or one held in memory: a Buffer or
   * Uint8Array of a file's contents (copied as load() is called; `info.path` then reads `<N bytes in memory>`).
   * Argument mistakes throw at once; a file that is missing or not a model rejects with a ModelError
   * (src/model.ts: the same as TorchModel).
   */
  static load(file: string | Uint8Array, options: OnnxLoadOptions = {}): Promise<OnnxModel> {
    const bytes = file instanceof Uint8Array ? file : undefined;
    if (!bytes && (typeof file !== 'string' || file === '')) throw invalid('a path to an .onnx file, or its bytes (a Uint8Array)', 'file', file);
    if (!isObject(options)) throw invalid('an options object', 'options', options);
    checkKeys(options, ['device', 'threads', 'thread', 'niceness', 'spinning'], 'the load options');
    const device = options.device ?? 'auto';
    if (typeof device !== 'string' || !DEVICE.test(device)) {
      invalid("'auto', 'cpu', 'cuda' or 'cuda:N'", 'device', device, typeof device === 'string' ? 'range' : 'type');
    }
    const threads = checkInteger(options.threads ?? availableParallelism(), 'threads', 1, 1024);
    const spinning = options.spinning ?? true;
    if (typeof spinning !== 'boolean') throw invalid('a boolean', 'spinning', spinning);
    const niceness = checkInteger(options.niceness ?? 0, 'niceness', 0, 19);
    const thread = options.thread ?? 'worker';
    if (thread !== 'worker' && thread !== 'main') throw invalid("'worker' or 'main'", 'thread', thread);
    if (device !== 'auto' && device !== 'cpu') {
      return Promise.reject(
        new ModelError(
          `OnnxModel runs on the CPU only (onnxruntime-node's CPU execution provider), not on ${device}: load it with device 'cpu', or run the TorchScript model with TorchModel on CUDA`,
          'ERR_UNSUPPORTED_DEVICE',
        ),
      );
    }
    // A copy of the caller's bytes, taken now (as TorchModel does): the load reads them later.
    // (new Uint8Array copies; a Buffer's slice() would not.)
    const source = bytes ? { label: `<${bytes.length} bytes in memory>`, bytes: new Uint8Array(bytes) } : { label: path.resolve(file as string) };
    return OnnxModel.#load(source, { threads, spinning }, { niceness, thread });
  }

  static async #load(
    source: { label: string; bytes?: Uint8Array },
    settings: SessionSettings,
    { niceness, thread }: { niceness: number; thread: 'worker' | 'main' },
  ): Promise<OnnxModel> {
    const absolute = source.label;
    if (!source.bytes && !existsSync(absolute)) throw new ModelError(`No such model file: ${absolute}`, 'ERR_MODEL_NOT_FOUND');

    const runner = thread === 'worker' ? await WorkerRunner.start(source, settings, niceness) : await MainThreadRunner.start(source, settings);
    return new OnnxModel(
      {
        path: absolute,
        device: 'cpu',
        threads: settings.threads,
        thread,
        spinning: settings.spinning,
        inputNames: Object.freeze(runner.inputs.map((i) => i.name)),
        outputNames: Object.freeze(runner.outputs.map((o) => o.name)),
        inputs: Object.freeze(runner.inputs.map(publicInfo)),
        outputs: Object.freeze(runner.outputs.map(publicInfo)),
        onnxruntimeVersion: ort.env.versions.common,
      },
      runner,
    );
  }

  get info(): OnnxModelInfo {
    return this.#info;
  }

  get device(): string {
    return 'cpu';
  }

  get runtime(): ModelRuntime {
    return { backend: 'onnx', version: this.#info.onnxruntimeVersion, threads: this.#info.threads };
  }

  get inputNames(): readonly string[] {
    return this.#info.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.#info.outputNames;
  }

  get inputs(): readonly ValueInfo[] {
    return this.#info.inputs;
  }

  get outputs(): readonly ValueInfo[] {
    return this.#info.outputs;
  }

  /**
   * Runs the model on `inputs`: in the order of the graph's inputs, or an object by input name (`inputNames`).
   * Resolves to the outputs in the graph's order, each named. The count, dtypes and shapes are checked against
   * the graph first (TypeError/RangeError, ERR_INVALID_ARGUMENT, thrown at once: the same messages as
   * TorchModel's). The inputs are copied to the worker as the call is made: the caller may reuse its arrays at
   * once (`thread: 'main'` reads them as the forward runs).
   */
  forward(inputs: Inputs): Promise<Tensor[]> {
    // Argument mistakes throw here, synchronously, before anything is queued (as TorchModel's).
    const tensors = this.#check(inputs);
    if (this.#disposed) return Promise.reject(new ModelError(`The model ${this.#info.path} has been disposed`, 'ERR_MODEL_DISPOSED'));
    return this.#runner.run(tensors).then((outputs) => outputs.map(toTensor));
  }

  /** forward(), its outputs by name (the graph's output names). */
  forwardNamed(inputs: Inputs): Promise<Record<string, Tensor>> {
    return this.forward(inputs).then((outputs) => Object.fromEntries(outputs.map((t) => [t.name as string, t])));
  }

  #check(inputs: Inputs): Tensor[] {
    const runner = this.#runner;
    const slots = runner.inputs.map((i) => ({ name: i.name, required: true }));
    const values = positionalInputs<InputValue>(inputs, slots);
    return values.map((value, i) => {
      const where = inputLabel(slots, i);
      if (!(value instanceof Tensor)) return invalid('a Tensor (Tensor.float32(data, shape), ...)', where, value);
      checkAgainst(runner.inputs[i], value, where);
      return value;
    });
  }

  /** Frees the session once the forwards already called have finished; later calls reject. */
  dispose(): Promise<void> {
    this.#disposed ??= this.#runner.dispose();
    return this.#disposed;
  }
}

/** An input's metadata checked: its dtype, its rank and fixed dimensions (named ones take any size). */
function checkAgainst(info: OnnxValueInfo, tensor: Tensor, where: string): void {
  if (info.elementType && !info.dtype) {
    throw argumentError(`${where} has the element type ${info.elementType}, which the library's Tensor does not hold`);
  }
  if (info.dtype && tensor.dtype !== info.dtype) {
    throw argumentError(`Expected a ${info.dtype} tensor for ${where} but received a ${tensor.dtype} tensor`);
  }
  const shape = info.shape;
  if (!shape) return;
  const wanted = `[${shape.join(', ')}]`;
  if (tensor.shape.length !== shape.length) {
    throw argumentError(`Expected ${shape.length} dimensions ${wanted} for ${where} but received shape [${tensor.shape.join(', ')}]`, 'range');
  }
  shape.forEach((d, k) => {
    if (typeof d === 'number' && tensor.shape[k] !== d) {
      throw argumentError(`Expected shape ${wanted} for ${where} but received shape [${tensor.shape.join(', ')}] (dimension ${k})`, 'range');
    }
  });
}

function publicInfo({ elementType: _elementType, ...info }: OnnxValueInfo): ValueInfo {
  return Object.freeze(info);
}

interface Runner {
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  run(inputs: readonly Tensor[]): Promise<WireTensor[]>;
  dispose(): Promise<void>;
}

function asModelError(err: unknown, fallback: string): ModelError {
  if (err instanceof ModelError) return err;
  const code = (err as { code?: unknown }).code;
  return new ModelError((err as Error).message ?? String(err), typeof code === 'string' ? code : fallback);
}

/** The session on the calling thread: every run blocks it for the whole forward. */
class MainThreadRunner implements Runner {
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly session: ort.InferenceSession) {
    this.inputs = valueInfos(session.inputNames, session.inputMetadata);
    this.outputs = valueInfos(session.outputNames, session.outputMetadata);
  }

  static async start(source: { label: string; bytes?: Uint8Array }, settings: SessionSettings): Promise<MainThreadRunner> {
    try {
      const options = sessionOptions(settings);
      const session = source.bytes ? await ort.InferenceSession.create(source.bytes, options) : await ort.InferenceSession.create(source.label, options);
      return new MainThreadRunner(session);
    } catch (err) {
      throw new ModelError(`Cannot load ${source.label} with ONNX Runtime: ${(err as Error).message}`, 'ERR_MODEL_LOAD');
    }
  }

  readonly inputs: OnnxValueInfo[];
  readonly outputs: OnnxValueInfo[];

  run(inputs: readonly Tensor[]): Promise<WireTensor[]> {
    const result = this.#queue
      .then(() => runSession(ort, this.session, inputs))
      .catch((err: unknown) => {
        throw asModelError(err, 'ERR_FORWARD');
      });
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async dispose(): Promise<void> {
    await this.#queue;
    await this.session.release();
  }
}

/** The session in a worker thread: the event loop only posts the inputs and receives the outputs. */
class WorkerRunner implements Runner {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (outputs: WireTensor[]) => void; reject: (err: Error) => void }>();
  #nextId = 1;
  #exited: Promise<void>;
  #resolveDisposed: (() => void) | undefined;
  #disposing = false;
  /** Set when the worker failed or stopped: every later call rejects with it at once. */
  #dead: ModelError | undefined;
  inputs: OnnxValueInfo[] = [];
  outputs: OnnxValueInfo[] = [];

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (reply: Reply) => this.#receive(reply));
    worker.on('error', (err) => this.#die(new ModelError(`The ONNX Runtime worker failed: ${err.message}`, 'ERR_FORWARD')));
    worker.once('exit', () => this.#die(new ModelError('The ONNX Runtime worker has stopped', 'ERR_MODEL_DISPOSED')));
  }

  static async start(source: { label: string; bytes?: Uint8Array }, settings: SessionSettings, niceness: number): Promise<WorkerRunner> {
    const file = source.label;
    const runner = new WorkerRunner(sessionWorker());
    const loaded = await new Promise<Reply>((resolve, reject) => {
      runner.#worker.once('message', resolve);
      runner.#worker.once('error', reject);
      runner.#post({ type: 'load', file, bytes: source.bytes, settings, niceness });
    }).catch((err: Error) => ({ type: 'error', message: err.message, code: 'ERR_MODEL_LOAD' }) as Reply);
    if (loaded.type !== 'loaded') {
      await runner.#worker.terminate();
      const message = loaded.type === 'error' ? loaded.message : `unexpected reply ${loaded.type}`;
      throw new ModelError(`Cannot load ${file} with ONNX Runtime: ${message}`, 'ERR_MODEL_LOAD');
    }
    runner.inputs = loaded.inputs;
    runner.outputs = loaded.outputs;
    // An idle model must not keep the process alive (it is ref'd while forwards are pending).
    runner.#worker.unref();
    return runner;
  }

  run(inputs: readonly Tensor[]): Promise<WireTensor[]> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (this.#pending.size === 1) this.#worker.ref();
      // Inputs are copied (structured clone, while postMessage runs): the caller's arrays stay its own.
      this.#post({ type: 'run', id, inputs: inputs.map((t) => ({ dtype: t.dtype, shape: [...t.shape], data: t.data })) });
    });
  }

  async dispose(): Promise<void> {
    if (this.#dead) return;
    // The worker handles requests in order: the runs already posted finish first.
    const disposed = new Promise<void>((resolve) => {
      this.#resolveDisposed = resolve;
    });
    this.#disposing = true;
    this.#worker.ref();
    this.#post({ type: 'dispose' });
    await Promise.race([disposed, this.#exited]);
    await this.#worker.terminate();
  }

  #post(request: Request): void {
    this.#worker.postMessage(request);
  }

  #receive(reply: Reply): void {
    if (reply.type === 'disposed') {
      this.#resolveDisposed?.();
      return;
    }
    if (reply.type !== 'result' && reply.type !== 'error') return;
    const pending = reply.id === undefined ? undefined : this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id!);
    // Idle, the worker must not keep the process alive; while disposing it must, until it is done.
    if (this.#pending.size === 0 && !this.#disposing) this.#worker.unref();
    if (reply.type === 'result') pending.resolve(reply.outputs);
    else pending.reject(new ModelError(reply.message, reply.code));
  }

  #die(err: ModelError): void {
    this.#dead ??= err;
    for (const { reject } of this.#pending.values()) reject(err);
    this.#pending.clear();
    this.#resolveDisposed?.();
  }
}
