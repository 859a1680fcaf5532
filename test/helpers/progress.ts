// State that a test's own code changes (answers collected by a load loop, say), awaited as an event rather than
// polled or slept on:
//   const progress = new Progress();
//   ... answers.push(answer); progress.changed();
//   await progress.until(() => answers.length >= 8, 'eight answers under load');

interface Waiter {
  condition: () => boolean;
  resolve: () => void;
}

export class Progress {
  readonly #waiters = new Set<Waiter>();

  /** To be called after each change of the state that the awaited conditions read. */
  changed(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.condition()) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  /**
   * Resolves once `condition()` holds: at once, or at the changed() that makes it hold. Rejects, naming `what`,
   * after `timeoutMs` (a generous bound: a test that waits on progress that never comes fails saying so).
   */
  until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        condition,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`${what}: not reached within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }
}
