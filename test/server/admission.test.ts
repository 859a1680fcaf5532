// The bound on /predict's queue, on its own: admission up to MAX_QUEUE waiting requests, leaving the queue when
// the forward starts or the request ends, the deadline, Retry-After.
import { describe, expect, it } from 'vitest';

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

  it('Retry-After: at least 1 s, about the recent wait, at most 60 s', async () => {
    const admission = new Admission({ maxQueue: 10, timeoutMs: 60_000 });
    expect(admission.retryAfterSeconds()).toBe(1);
    const ticket = admission.enter()!;
    await new Promise((resolve) => setTimeout(resolve, 30));
    ticket.started();
    expect(admission.retryAfterSeconds()).toBe(1);
  });
});
