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

import { type InferenceModel, ModelError, type ModelRuntime } from '../model.js';
import { startWorker } from '../worker-thread.js';
import { Tensor } from '../torch/tensor.js';
import { checkInteger, checkKeys, invalid, isObject } from '../torch/validate.js';
import { runSession, sessionOptions, toTensor, type Reply, type Request, type SessionSettings, type WireTensor } from './protocol.js';

export interface OnnxLoadOptions {
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
  onnxruntimeVersion: string;
}

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
   * Loads an .onnx file (exported by scripts/export_model.py, or any other). Argument mistakes throw at once;
   * a file that is missing or not a model rejects with a ModelError (src/model.ts: the same as TorchModel).
   */
  static load(file: string, options: OnnxLoadOptions = {}): Promise<OnnxModel> {
    if (typeof file !== 'string' || file === '') throw invalid('a path to an .onnx file', 'file', file);
    if (!isObject(options)) throw invalid('an options object', 'options', options);
    checkKeys(options, ['threads', 'thread', 'niceness', 'spinning'], 'the load options');
    const threads = checkInteger(options.threads ?? availableParallelism(), 'threads', 1, 1024);
    const spinning = options.spinning ?? true;
    if (typeof spinning !== 'boolean') throw invalid('a boolean', 'spinning', spinning);
    const niceness = checkInteger(options.niceness ?? 0, 'niceness', 0, 19);
    const thread = options.thread ?? 'worker';
    if (thread !== 'worker' && thread !== 'main') throw invalid("'worker' or 'main'", 'thread', thread);
    return OnnxModel.#load(path.resolve(file), { threads, spinning }, { niceness, thread });
  }

  static async #load(absolute: string, settings: SessionSettings, { niceness, thread }: { niceness: number; thread: 'worker' | 'main' }): Promise<OnnxModel> {
    if (!existsSync(absolute)) throw new ModelError(`No such model file: ${absolute}`, 'ERR_MODEL_NOT_FOUND');

    const runner = thread === 'worker' ? await WorkerRunner.start(absolute, settings, niceness) : await MainThreadRunner.start(absolute, settings);
    return new OnnxModel(
      {
        path: absolute,
        device: 'cpu',
        threads: settings.threads,
        thread,
        spinning: settings.spinning,
        inputNames: runner.inputNames,
        outputNames: runner.outputNames,
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

  /**
   * Runs the model on positional inputs (in the order of the graph's inputs); its outputs in the graph's order.
   * The inputs are copied to the worker as the call is made: the caller may reuse its arrays at once.
   */
  forward(inputs: readonly Tensor[]): Promise<Tensor[]> {
    // Argument mistakes throw here, synchronously, before anything is queued (as TorchModel's).
    if (!Array.isArray(inputs) || inputs.some((t) => !(t instanceof Tensor))) throw invalid('an array of Tensor', 'inputs', inputs);
    if (this.#disposed) return Promise.reject(new ModelError(`The model ${this.#info.path} has been disposed`, 'ERR_MODEL_DISPOSED'));
    return this.#runner.run(inputs).then((outputs) => outputs.map(toTensor));
  }

  /** Frees the session once the forwards already called have finished; later calls reject. */
  dispose(): Promise<void> {
    this.#disposed ??= this.#runner.dispose();
    return this.#disposed;
  }
}

interface Runner {
  inputNames: string[];
  outputNames: string[];
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

  private constructor(readonly session: ort.InferenceSession) {}

  static async start(file: string, settings: SessionSettings): Promise<MainThreadRunner> {
    try {
      return new MainThreadRunner(await ort.InferenceSession.create(file, sessionOptions(settings)));
    } catch (err) {
      throw new ModelError(`Cannot load ${file} with ONNX Runtime: ${(err as Error).message}`, 'ERR_MODEL_LOAD');
    }
  }

  get inputNames(): string[] {
    return [...this.session.inputNames];
  }

  get outputNames(): string[] {
    return [...this.session.outputNames];
  }

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
  inputNames: string[] = [];
  outputNames: string[] = [];

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (reply: Reply) => this.#receive(reply));
    worker.on('error', (err) => this.#die(new ModelError(`The ONNX Runtime worker failed: ${err.message}`, 'ERR_FORWARD')));
    worker.once('exit', () => this.#die(new ModelError('The ONNX Runtime worker has stopped', 'ERR_MODEL_DISPOSED')));
  }

  static async start(file: string, settings: SessionSettings, niceness: number): Promise<WorkerRunner> {
    const runner = new WorkerRunner(sessionWorker());
    const loaded = await new Promise<Reply>((resolve, reject) => {
      runner.#worker.once('message', resolve);
      runner.#worker.once('error', reject);
      runner.#post({ type: 'load', file, settings, niceness });
    }).catch((err: Error) => ({ type: 'error', message: err.message, code: 'ERR_MODEL_LOAD' }) as Reply);
    if (loaded.type !== 'loaded') {
      await runner.#worker.terminate();
      const message = loaded.type === 'error' ? loaded.message : `unexpected reply ${loaded.type}`;
      throw new ModelError(`Cannot load ${file} with ONNX Runtime: ${message}`, 'ERR_MODEL_LOAD');
    }
    runner.inputNames = loaded.inputNames;
    runner.outputNames = loaded.outputNames;
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
