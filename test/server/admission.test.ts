// The bound on /predict's queue, on its own: admission up to MAX_QUEUE waiting requests, leaving the queue when
// the forward starts or the request ends, the deadline, Retry-After.
import { describe, expect, it, vi } from 'vitest';

import { Admission } from '../../src/server/admission.js';

describe('Admission', () => {
  it('admits up to maxQueue waiting requests; a started or finished one makes room', () => {
    const admission = new Admission({ maxQueue: 2, timeoutMs: 1000 });
    const a = admission.enter()!;
    const b = admission.enter()!;
    expect(admission.waiting).toBe(2);
    expect(admission.full).toBe(true);
    expect(admission.enter()).toBeUndefined();
    expect(admission.rejected).toEqual({ full: 1, timeout: 0 });
    a.started();
    expect(admission.waiting).toBe(1);
    a.release(); // already left the queue when its forward started
    expect(admission.waiting).toBe(1);
    b.release();
    b.release();
    expect(admission.waiting).toBe(0);
    expect(admission.enter()).toBeDefined();
  });

  it('gives each ticket the deadline REQUEST_TIMEOUT_MS after admission', () => {
    const admission = new Admission({ maxQueue: 1, timeoutMs: 250 });
    const before = performance.now();
    const ticket = admission.enter()!;
    expect(ticket.deadline).toBeGreaterThanOrEqual(before + 250);
    expect(ticket.deadline).toBeLessThanOrEqual(performance.now() + 250);
  });

  it('Retry-After: at least 1 s, about the recent wait, at most 60 s', () => {
    // The waits are measured with performance.now(): the test sets that clock rather than sleeping.
    let now = 1_000;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now);
    try {
      const admission = new Admission({ maxQueue: 10, timeoutMs: 600_000 });
      const waits = (ms: number, times: number): void => {
        for (let i = 0; i < times; i++) {
          const ticket = admission.enter()!;
          now += ms;
          ticket.started();
        }
      };
      expect(admission.retryAfterSeconds()).toBe(1);
      waits(30, 1);
      expect(admission.retryAfterSeconds()).toBe(1);
      // a request that ends without a forward (a client gone) says nothing of the queue's wait
      const gone = admission.enter()!;
      now += 100_000;
      gone.release();
      expect(admission.retryAfterSeconds()).toBe(1);
      // waits of 20 s, again and again: about 20 s
      waits(20_000, 40);
      expect(admission.retryAfterSeconds()).toBe(20);
      // waits of two minutes: at most 60 s
      waits(120_000, 40);
      expect(admission.retryAfterSeconds()).toBe(60);
      // and down again once the waits are short
      waits(10, 60);
      expect(admission.retryAfterSeconds()).toBe(1);
    } finally {
      clock.mockRestore();
    }
  });
});
