// Forwards in flight: many at once, the event loop during a slow one, argument mistakes that must not be
// queued, and dispose() while forwards are queued. Every assertion is about the ORDER of events; the slow
// model is calibrated only so that there is time for events to happen (see helpers/slow.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Tensor, TorchError, TorchModel } from '../../src/index.js';
import { TEST_DEVICE, TOLERANCE, exampleInputs, exampleJson, expectOutputs, modelPath, tensorMismatch } from '../helpers/fixtures.js';
import { calibrateSlow, iterations, slowInput } from '../helpers/slow.js';

let addMul: TorchModel;
let listOut: TorchModel;
let slow: TorchModel;
/** Iterations of the slow model for a forward of roughly 400 ms on this machine. */
let slowN: number;

beforeAll(async () => {
  [addMul, listOut, slow] = await Promise.all([
    TorchModel.load(modelPath('add_mul'), { device: TEST_DEVICE }),
    TorchModel.load(modelPath('list_out'), { device: TEST_DEVICE }),
    // one intra-op thread: the test's own busy event loop must not fight LibTorch's OpenMP team for cores
    TorchModel.load(modelPath('slow'), { device: TEST_DEVICE, threads: 1 }),
  ]);
  slowN = await calibrateSlow(slow, 400);
});

afterAll(async () => {
  await Promise.all([addMul.dispose(), listOut.dispose(), slow.dispose()]);
});

function float32(values: number[], shape: number[]) {
  return Tensor.float32(Float32Array.from(values), shape);
}

describe('concurrent forwards', () => {
  it('200 forwards of add_mul at once (Promise.all), each with its own inputs, are all correct', async () => {
    const cases = Array.from({ length: 200 }, (_, i) => {
      const a = Float32Array.from([i, i + 0.5, -i, i / 7, 1, 2], Math.fround);
      const b = Float32Array.from([1, -i, i * 0.25, 3, i / 3, -2], Math.fround);
      return {
        inputs: [Tensor.float32(a, [2, 3]), Tensor.float32(b, [2, 3])],
        sum: Array.from(a, (v, k) => Math.fround(v + b[k])),
        product: Array.from(a, (v, k) => Math.fround(v * b[k])),
      };
    });
    const order: number[] = [];
    const results = await Promise.all(
      cases.map((c, i) =>
        addMul.forward(c.inputs).then((out) => {
          order.push(i);
          return out;
        }),
      ),
    );
    results.forEach(([sum, product], i) => {
      const shape = [2, 3];
      const where = `forward ${i}`;
      expect(tensorMismatch(sum, { name: null, dtype: 'float32', shape, data: cases[i].sum }, TOLERANCE), where).toBeUndefined();
      expect(tensorMismatch(product, { name: null, dtype: 'float32', shape, data: cases[i].product }, TOLERANCE), where).toBeUndefined();
    });
    // one inference thread, first in first out
    expect(order).toEqual(cases.map((_, i) => i));
  });

  it('forwards of two models interleaved resolve in the order they were called, each correct', async () => {
    const order: string[] = [];
    const calls: Promise<Tensor[]>[] = [];
    for (let i = 0; i < 20; i++) {
      calls.push(
        addMul.forward([float32([i], [1]), float32([2], [1])]).then((o) => {
          order.push(`add_mul ${i}`);
          return o;
        }),
      );
      calls.push(
        listOut.forward([float32([i], [1])]).then((o) => {
          order.push(`list_out ${i}`);
          return o;
        }),
      );
    }
    const outputs = await Promise.all(calls);
    for (let i = 0; i < 20; i++) {
      expect(outputs[2 * i].map((t) => t.toArray())).toEqual([[i + 2], [i * 2]]);
      expect(outputs[2 * i + 1].map((t) => t.toArray())).toEqual([[i * 2], [i - 1]]);
    }
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => [`add_mul ${i}`, `list_out ${i}`]).flat());
  });
});

describe('the event loop keeps turning during a slow forward', () => {
  it('timers and immediates run many times before the forward resolves', async () => {
    const events: string[] = [];
    let done = false;
    const forward = slow.forward([slowInput(), iterations(slowN)]).then(([y]) => {
      done = true;
      events.push('forward');
      return y;
    });
    // a few immediates in a row (a chain without end would keep a core busy), and a timer every 5 ms
    const immediate = (left: number) => {
      if (done || left === 0) return;
      events.push('immediate');
      setImmediate(immediate, left - 1);
    };
    const timeout = () => {
      if (done) return;
      events.push('timeout');
      setTimeout(timeout, 5);
    };
    setImmediate(immediate, 10);
    setTimeout(timeout, 5);

    const y = await forward;
    expect(y.shape).toEqual([128, 128]);
    const before = events.slice(0, events.indexOf('forward'));
    expect(before.filter((e) => e === 'timeout').length).toBeGreaterThanOrEqual(3);
    expect(before.filter((e) => e === 'immediate').length).toBeGreaterThanOrEqual(3);
  });

  it('a model loads (libuv pool) while a slow forward runs (inference thread); an optimised load settles too', async () => {
    // Without optimisation a load runs no operator: it never waits for the inference thread.
    {
      const events: string[] = [];
      const forward = slow.forward([slowInput(), iterations(slowN)]).then(() => events.push('forward'));
      const load = TorchModel.load(modelPath('identity'), { device: TEST_DEVICE, optimize: false }).then((m) => {
        events.push('loaded');
        return m;
      });
      const [, model] = await Promise.all([forward, load]);
      await model.dispose();
      expect(events).toEqual(['loaded', 'forward']);
    }
    // With it, optimize_for_inference runs on the inference thread (see openmp-teams.test.ts), after the forward
    // queued before it. Which of the two promises settles first is not asserted: a forward's result reaches
    // JavaScript through the addon's thread-safe function, a load's through libuv's work queue.
    const forward = slow.forward([slowInput(), iterations(slowN)]);
    const model = await TorchModel.load(modelPath('identity'), { device: TEST_DEVICE, optimize: true });
    expect(model.info.optimized).toBe(true);
    await forward;
    await model.dispose();
  });

  it('argument mistakes throw at once, without waiting behind a queued slow forward', async () => {
    const events: string[] = [];
    const forward = slow.forward([slowInput(), iterations(slowN)]).then(() => events.push('slow forward'));
    const record = (label: string, call: () => unknown) => {
      try {
        call();
        events.push(`${label}: accepted`);
      } catch (e) {
        events.push(`${label}: ${(e as Error).constructor.name}`);
      }
    };
    // caught by the library (TypeScript)
    record('not a Tensor', () => addMul.forward([new Float32Array(3), new Float32Array(3)] as never));
    record('not an array', () => addMul.forward(Tensor.float32([1]) as never));
    // caught by the addon: a bool tensor whose data was changed after it was checked
    const bool = Tensor.bool([0, 1]);
    bool.data[1] = 7;
    record('bool 7', () => addMul.forward([bool, bool]));
    events.push('calls returned');
    await forward;
    expect(events).toEqual(['not a Tensor: TypeError', 'not an array: TypeError', 'bool 7: RangeError', 'calls returned', 'slow forward']);
  });

  it('argument mistakes have precise messages', () => {
    expect(() => addMul.forward([new Float32Array(3), new Float32Array(3)] as never)).toThrow(
      new TypeError('Expected a Tensor (Tensor.float32(data, shape), ...) for inputs[0] (a) but received a Float32Array'),
    );
    expect(() => addMul.forward('x' as never)).toThrow(
      new TypeError("Expected an array of inputs, or an object of inputs by name for inputs but received 'x' of type string"),
    );
    expect(() => addMul.forward(Tensor.float32([1]) as never)).toThrow(
      new TypeError('Expected an array of inputs, or an object of inputs by name for inputs but received an object of type Tensor'),
    );
    const tensorLike = { dtype: 'float32', shape: [1], data: new Float32Array(1) };
    expect(() => addMul.forwardNamed([tensorLike, tensorLike] as never)).toThrow(
      /^Expected a Tensor .* for inputs\[0\] \(a\) but received an object of type Object$/,
    );
    const bool = Tensor.bool([1, 0, 1]);
    bool.data[2] = 2;
    expect(() => addMul.forward([bool, bool])).toThrow(new RangeError('Expected only 0 and 1 in the data of bool inputs[0] but element 2 is 2'));
  });
});

describe('dispose', () => {
  it('lets the forwards in flight finish, then frees the model; later forwards reject', async () => {
    const model = await TorchModel.load(modelPath('slow'), { device: TEST_DEVICE, threads: 1 });
    const n = await calibrateSlow(model, 300);
    const x = slowInput();
    const small = exampleInputs('slow');
    const events: string[] = [];
    const track = <T>(label: string, p: Promise<T>) =>
      p.then(
        (v) => {
          events.push(label);
          return v;
        },
        (e: unknown) => {
          events.push(`${label} rejected`);
          throw e;
        },
      );

    const inFlight = [
      track('forward 0 (slow)', model.forward([x, iterations(n)])),
      track('forward 1', model.forward(small)),
      track('forward 2 (slow)', model.forward([x, iterations(n)])),
      track('forward 3', model.forward(small)),
    ];
    const disposed = track('disposed', model.dispose()); // not awaited
    expect(model.disposed).toBe(true);
    const late = track('late forward', model.forward(small)).catch((e: unknown) => e);
    const lateNamed = model.forwardNamed(small).catch((e: unknown) => e);
    const again = model.dispose();

    const outputs = await Promise.all(inFlight);
    await disposed;
    await expect(again).resolves.toBeUndefined();

    expect(events).toEqual(['late forward rejected', 'forward 0 (slow)', 'forward 1', 'forward 2 (slow)', 'forward 3', 'disposed']);
    expectOutputs(outputs[1], exampleJson('slow').output, TOLERANCE, 'forward 1');
    expectOutputs(outputs[3], exampleJson('slow').output, TOLERANCE, 'forward 3');
    for (const i of [0, 2]) {
      expect(outputs[i][0].shape).toEqual([128, 128]);
      expect(outputs[i][0].toArray().every((v) => Number.isFinite(v) && Math.abs(v) <= 1)).toBe(true);
    }

    for (const err of [await late, await lateNamed]) {
      expect(err).toBeInstanceOf(TorchError);
      expect((err as TorchError).code).toBe('ERR_MODEL_DISPOSED');
      expect((err as TorchError).message).toBe(`The model ${modelPath('slow')} has been disposed`);
    }
    // after everything: still disposed, still describable, disposing again is fine
    await expect(model.forward(small)).rejects.toMatchObject({ code: 'ERR_MODEL_DISPOSED' });
    await expect(model.dispose()).resolves.toBeUndefined();
    expect(model.disposed).toBe(true);
    expect(model.info.path).toBe(modelPath('slow'));
  });

  it('the outputs of a disposed model stay readable', async () => {
    const model = await TorchModel.load(modelPath('list_out'), { device: TEST_DEVICE });
    const outputs = await model.forward(exampleInputs('list_out'));
    await model.dispose();
    expectOutputs(outputs, exampleJson('list_out').output, TOLERANCE);
  });

  it('disposing one model leaves the others working', async () => {
    const model = await TorchModel.load(modelPath('add_mul'), { device: TEST_DEVICE });
    const pending = addMul.forward(exampleInputs('add_mul'));
    await model.dispose();
    expectOutputs(await pending, exampleJson('add_mul').output, TOLERANCE);
    expectOutputs(await addMul.forward(exampleInputs('add_mul')), exampleJson('add_mul').output, TOLERANCE);
  });
});
