// The event loop polls, instead of sleeping, while a short forward is in flight (src/torch/short-wait.ts). Its
// clock is injected here, so that what counts as short and how long the loop polls are decided by the test, not
// by how busy the machine is.
import { describe, expect, it } from 'vitest';

import { ForwardTimer, LoopPoller, SHORT_FORWARD_NS } from '../../src/torch/short-wait.js';

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

  it('never counts a model whose first forward is long as short', () => {
    const clock = manualClock();
    const timer = new ForwardTimer(clock.now);
    const done = timer.start();
    clock.advance(SHORT_FORWARD_NS);
    done();
    expect(timer.short).toBe(false);
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

  it('stops after SHORT_FORWARD_NS even if the answer never comes, and a rejection still reaches the caller', async () => {
    const clock = manualClock();
    const poller = new LoopPoller(clock.now);
    poller.hold(new Promise(() => {}));
    await turn();
    expect(poller.polling).toBe(true);
    clock.advance(SHORT_FORWARD_NS);
    await turn();
    await turn();
    expect(poller.polling).toBe(false);

    const failed = Promise.reject(new Error('forward failed'));
    poller.hold(failed);
    await expect(failed).rejects.toThrow('forward failed');
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
