// The dynamic batcher on its own, with forwards whose timing the test controls: what goes into a batch, in what
// order, the bound on a batch, the wait for company, one forward at a time across queues, deadlines, failures.
import { describe, expect, it, vi } from 'vitest';

import { BatchScheduler, QueueError, type BatchRecord } from '../../src/classifier/batch-scheduler.js';

/** A forward that the test finishes by hand; every call is recorded with its items. */
function manualForward<I>() {
  const calls: { items: I[]; finish: (fail?: Error) => void }[] = [];
  const run = (items: I[]) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ items, finish: (fail) => (fail ? reject(fail) : resolve(items.map((i) => `out:${String(i)}`))) });
    });
  return { calls, run };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('BatchScheduler', () => {
  it('runs a lone request at once, and batches those that arrive while a forward runs, in order, up to maxBatch', async () => {
    const records: BatchRecord[] = [];
    const scheduler = new BatchScheduler({ maxBatch: 3, maxDelayMs: 0 }, (r) => records.push(r));
    const forward = manualForward<number>();
    const queue = scheduler.queue('head', forward.run);
    const first = queue.submit(0);
    await tick();
    expect(forward.calls.map((c) => c.items)).toEqual([[0]]);
    const rest = [1, 2, 3, 4, 5].map((i) => queue.submit(i));
    await tick();
    expect(forward.calls).toHaveLength(1); // one forward at a time
    expect(scheduler.waiting).toBe(5);
    forward.calls[0].finish();
    expect(await first).toBe('out:0');
    await tick();
    expect(forward.calls.map((c) => c.items)).toEqual([[0], [1, 2, 3]]);
    forward.calls[1].finish();
    await tick();
    expect(forward.calls.map((c) => c.items)).toEqual([[0], [1, 2, 3], [4, 5]]);
    forward.calls[2].finish();
    expect(await Promise.all(rest)).toEqual(['out:1', 'out:2', 'out:3', 'out:4', 'out:5']);
    await tick();
    expect(records.map((r) => r.size)).toEqual([1, 3, 2]);
    expect(records.every((r) => r.queue === 'head' && !r.failed && r.waitedMs.length === r.size)).toBe(true);
  });

  it('with maxDelayMs, a request that finds the model idle waits for company (at most that long)', async () => {
    // The test's clock (setTimeout and performance.now), moved by hand: the wait is exact, whatever the machine's load.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      const scheduler = new BatchScheduler({ maxBatch: 8, maxDelayMs: 40 }, undefined);
      const forward = manualForward<number>();
      const queue = scheduler.queue('model', forward.run);
      const answers = [queue.submit(1)];
      vi.advanceTimersByTime(10);
      answers.push(queue.submit(2), queue.submit(3));
      vi.advanceTimersByTime(29);
      await tick();
      expect(forward.calls).toHaveLength(0); // 39 ms after the first request: still waiting for company
      vi.advanceTimersByTime(1);
      await tick();
      expect(forward.calls.map((c) => c.items)).toEqual([[1, 2, 3]]); // 40 ms: the batch goes, as it is
      forward.calls[0].finish();
      expect(await Promise.all(answers)).toEqual(['out:1', 'out:2', 'out:3']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a full batch does not wait for the delay', async () => {
    const scheduler = new BatchScheduler({ maxBatch: 2, maxDelayMs: 10_000 }, undefined);
    const forward = manualForward<number>();
    const queue = scheduler.queue('model', forward.run);
    const answers = [queue.submit(1), queue.submit(2)];
    await tick();
    expect(forward.calls.map((c) => c.items)).toEqual([[1, 2]]);
    forward.calls[0].finish();
    await Promise.all(answers);
  });

  it('two queues share one forward at a time; the oldest waiting request goes first', async () => {
    const scheduler = new BatchScheduler({ maxBatch: 4, maxDelayMs: 0 }, undefined);
    const text = manualForward<string>();
    const head = manualForward<string>();
    const textQueue = scheduler.queue('text_encoder', text.run);
    const headQueue = scheduler.queue('head', head.run);
    const a = headQueue.submit('h1');
    await tick();
    const b = textQueue.submit('t1');
    const c = headQueue.submit('h2');
    await tick();
    expect(text.calls).toHaveLength(0); // the head's forward runs
    head.calls[0].finish();
    await a;
    await tick();
    expect(text.calls.map((x) => x.items)).toEqual([['t1']]); // t1 waited longer than h2
    expect(head.calls).toHaveLength(1);
    text.calls[0].finish();
    await b;
    await tick();
    expect(head.calls.map((x) => x.items)).toEqual([['h1'], ['h2']]);
    head.calls[1].finish();
    await c;
  });

  it('a request still waiting at its deadline is rejected with ERR_QUEUE_TIMEOUT and never computed', async () => {
    const scheduler = new BatchScheduler({ maxBatch: 1, maxDelayMs: 0 }, undefined);
    const forward = manualForward<number>();
    const queue = scheduler.queue('model', forward.run);
    const running = queue.submit(1);
    await tick();
    const late = queue.submit(2, { deadline: performance.now() + 20 });
    const error = await late.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueError);
    expect(error).toMatchObject({ code: 'ERR_QUEUE_TIMEOUT' });
    expect((error as Error).message).toMatch(/^The request waited \d+ ms for the model/);
    forward.calls[0].finish();
    await running;
    await tick();
    expect(forward.calls.map((c) => c.items)).toEqual([[1]]);
    expect(scheduler.waiting).toBe(0);
  });

  it('a request whose deadline has passed when it arrives is refused at once, even when the model is idle', async () => {
    const scheduler = new BatchScheduler({ maxBatch: 4, maxDelayMs: 0 }, undefined);
    const forward = manualForward<number>();
    const queue = scheduler.queue('model', forward.run);
    await expect(queue.submit(1, { deadline: performance.now() - 1 })).rejects.toMatchObject({ code: 'ERR_QUEUE_TIMEOUT' });
    await tick();
    expect(forward.calls).toHaveLength(0);
  });

  it('onStart is called when the forward that computes the request starts', async () => {
    const scheduler = new BatchScheduler({ maxBatch: 1, maxDelayMs: 0 }, undefined);
    const forward = manualForward<number>();
    const queue = scheduler.queue('model', forward.run);
    const started: number[] = [];
    const a = queue.submit(1, { onStart: () => started.push(1) });
    const b = queue.submit(2, { onStart: () => started.push(2) });
    await tick();
    expect(started).toEqual([1]);
    forward.calls[0].finish();
    await a;
    await tick();
    expect(started).toEqual([1, 2]);
    forward.calls[1].finish();
    await b;
  });

  it('a failed forward rejects every request of its batch, and the next batch still runs', async () => {
    const records: BatchRecord[] = [];
    const scheduler = new BatchScheduler({ maxBatch: 2, maxDelayMs: 0 }, (r) => records.push(r));
    const forward = manualForward<number>();
    const queue = scheduler.queue('model', forward.run);
    const a = queue.submit(1);
    await tick();
    const [b, c, d] = [queue.submit(2), queue.submit(3), queue.submit(4)];
    forward.calls[0].finish();
    await a;
    await tick();
    forward.calls[1].finish(new Error('boom'));
    await expect(b).rejects.toThrow('boom');
    await expect(c).rejects.toThrow('boom');
    await tick();
    forward.calls[2].finish();
    expect(await d).toBe('out:4');
    await tick();
    expect(records.map((r) => [r.size, r.failed])).toEqual([
      [1, false],
      [2, true],
      [1, false],
    ]);
  });

  it('a forward that answers the wrong number of outputs fails its batch with a clear error', async () => {
    const scheduler = new BatchScheduler({ maxBatch: 4, maxDelayMs: 5 }, undefined);
    const queue = scheduler.queue('head', async () => ['only one']);
    const answers = [queue.submit(1), queue.submit(2)];
    await expect(answers[0]).rejects.toThrow('The head forward gave 1 outputs for 2 inputs');
    await expect(answers[1]).rejects.toThrow('The head forward gave 1 outputs for 2 inputs');
  });

  it('checks its options', () => {
    expect(() => new BatchScheduler({ maxBatch: 0, maxDelayMs: 0 })).toThrow('Expected a positive integer for maxBatch but received 0');
    expect(() => new BatchScheduler({ maxBatch: 1, maxDelayMs: -1 })).toThrow('Expected a number of at least 0 for maxDelayMs but received -1');
  });
});
