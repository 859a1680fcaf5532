// The event loop polls, instead of sleeping, while a short forward is in flight (src/torch/short-wait.ts). Its
// clock is injected here, so that what counts as short and how long the loop polls are decided by the test, not
// by how busy the machine is.
import { describe, expect, it, vi } from 'vitest';

import { Tensor, TorchModel } from '../../src/index.js';
import { ForwardTimer, LoopPoller, loopPoller, SHORT_FORWARD_NS } from '../../src/torch/short-wait.js';
import { modelPath } from '../helpers/fixtures.js';

/** A clock the test moves. */
function manualClock(): { now: () => bigint; advance: (ns: bigint) => void } {
  let t = 1_000_000_000n;
  return { now: () => t, advance: (ns) => (t += ns) };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ForwardTimer', () => {
  it('counts a model as short only once its forwards have been timed under the limit', () => {
    const clock = manualClock();
    const timer = new ForwardTimer(clock.now);
    expect(timer.short, 'a model nothing is known of').toBe(false);
    let done = timer.start();
    clock.advance(SHORT_FORWARD_NS / 5n);
    done();
    expect(timer.short).toBe(true);
    // A model whose forwards become long stops counting as short (a moving average: after a few forwards).
    for (let i = 0; i < 10; i++) {
      done = timer.start();
      clock.advance(10n * SHORT_FORWARD_NS);
      done();
    }
    expect(timer.short).toBe(false);
  });

  it('never counts a model whose forwards are long as short; a short forward after a slow first one counts at once', () => {
    const clock = manualClock();
    const timer = new ForwardTimer(clock.now);
    let done = timer.start();
    clock.advance(20n * SHORT_FORWARD_NS); // a first forward, LibTorch's lazy set-up in it
    done();
    expect(timer.short).toBe(false);
    done = timer.start();
    clock.advance(SHORT_FORWARD_NS);
    done();
    expect(timer.short, 'exactly the limit is not under it').toBe(false);
    done = timer.start();
    clock.advance(SHORT_FORWARD_NS / 10n);
    done();
    expect(timer.short).toBe(true);
    // One slow forward among short ones does not end it.
    done = timer.start();
    clock.advance(2n * SHORT_FORWARD_NS);
    done();
    expect(timer.short).toBe(true);
  });
});

describe('LoopPoller', () => {
  it('polls while an answer is pending, and stops once it settles', async () => {
    const poller = new LoopPoller(manualClock().now);
    let settle!: () => void;
    poller.hold(new Promise<void>((resolve) => (settle = resolve)));
    expect(poller.polling).toBe(true);
    for (let i = 0; i < 20; i++) await turn();
    expect(poller.polling, 'still pending, within its time: the loop keeps polling').toBe(true);
    settle();
    await turn();
    await turn();
    expect(poller.polling).toBe(false);
  });

  it('stops after SHORT_FORWARD_NS even if the answer never comes', async () => {
    const clock = manualClock();
    const poller = new LoopPoller(clock.now);
    poller.hold(new Promise(() => {}));
    await turn();
    expect(poller.polling).toBe(true);
    clock.advance(SHORT_FORWARD_NS);
    await turn();
    await turn();
    expect(poller.polling).toBe(false);
  });

  it('holding an answer that rejects adds no unhandled rejection', async () => {
    const poller = new LoopPoller(manualClock().now);
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      let reject!: (err: Error) => void;
      const answer = new Promise((_resolve, rej) => (reject = rej));
      poller.hold(answer);
      const caller = answer.catch((err: Error) => err.message); // the caller's own chain handles it
      reject(new Error('forward failed'));
      expect(await caller).toBe('forward failed');
      // Two turns of the loop: Node reports unhandled rejections once the microtasks are done, and the poller's
      // callback, queued before these, has run by then (a timer here could fire first on a busy machine).
      await turn();
      await turn();
      expect(unhandled).toEqual([]);
      expect(poller.polling).toBe(false);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it('one chain for every answer held: it runs until the last settles', async () => {
    const poller = new LoopPoller(manualClock().now);
    const settles: (() => void)[] = [];
    for (let i = 0; i < 3; i++) poller.hold(new Promise<void>((resolve) => settles.push(resolve)));
    for (const settle of settles) {
      await turn();
      expect(poller.polling).toBe(true);
      settle();
    }
    await turn();
    await turn();
    expect(poller.polling).toBe(false);
  });
});

describe('TorchModel with the poller', () => {
  it("holds the loop polling for a short model's forward, not for its first", async () => {
    const model = await TorchModel.load(modelPath('add_mul'), { threads: 1 });
    const inputs = () => [Tensor.float32([1, 2]), Tensor.float32([3, 4])];
    // process.hrtime.bigint, which both the model's timer and the poller read, moves 1 µs a call: every forward
    // then takes a few µs, however busy the machine.
    let now = 0n;
    const clock = vi.spyOn(process.hrtime, 'bigint').mockImplementation(() => (now += 1000n));
    try {
      const first = model.forward(inputs());
      expect(loopPoller.polling, 'nothing is known of the model yet').toBe(false);
      await first;
      const second = model.forward(inputs());
      expect(loopPoller.polling, 'its first forward took a few µs').toBe(true);
      const [sum] = await second;
      expect(sum?.dtype === 'float32' && Array.from(sum.data)).toEqual([4, 6]);
    } finally {
      clock.mockRestore();
      await model.dispose();
    }
  });
});
