// The text feature cache on its own: keyed by token ids, one computation per text however many ask at once,
// LRU, size 0, failures not kept.
import { describe, expect, it } from 'vitest';

import { TextFeatureCache } from '../../src/classifier/text-features.js';

const ids = (...values: number[]) => BigInt64Array.from([...values, 0, 0, 0].map(BigInt));

/** A computation that the test finishes by hand (so requests for it are concurrent by construction); counts its calls. */
function manualCompute() {
  const state = { calls: 0, finish: (_features: Float32Array): void => undefined };
  const compute = (): Promise<Float32Array> => {
    state.calls++;
    return new Promise((resolve) => {
      state.finish = resolve;
    });
  };
  return { state, compute };
}

describe('TextFeatureCache', () => {
  it('keys by the real tokens only (the padding is not part of the key)', () => {
    expect(TextFeatureCache.key(ids(101, 7, 102), 3)).toBe('101,7,102');
    expect(TextFeatureCache.key(ids(101, 7, 102), 3)).not.toBe(TextFeatureCache.key(ids(101, 8, 102), 3));
  });

  it('computes a text once, for concurrent and later requests alike', async () => {
    const cache = new TextFeatureCache(4);
    const { state, compute } = manualCompute();
    const pending = [cache.get('a', compute), cache.get('a', compute), cache.get('a', compute)];
    expect(state.calls).toBe(1);
    state.finish(new Float32Array([1, 2, 3]));
    const answers = await Promise.all(pending);
    expect(answers.map((a) => a.cached)).toEqual([false, true, true]);
    expect(answers.map((a) => Array.from(a.features))).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ]);
    expect((await cache.get('a', compute)).cached).toBe(true);
    expect(state.calls).toBe(1);
    expect(cache.stats).toEqual({ size: 1, maxSize: 4, bytesPerEntry: 12, hits: 3, misses: 1 });
  });

  it('evicts the least recently used text beyond its size', async () => {
    const cache = new TextFeatureCache(2);
    const computed: string[] = [];
    const compute = (key: string) => async () => {
      computed.push(key);
      return new Float32Array([key.length]);
    };
    for (const key of ['a', 'b', 'a', 'c', 'a', 'b']) await cache.get(key, compute(key));
    expect(computed).toEqual(['a', 'b', 'c', 'b']);
    expect(cache.stats.size).toBe(2);
  });

  it('size 0 keeps nothing, but concurrent requests for one text still share its computation', async () => {
    const cache = new TextFeatureCache(0);
    const { state, compute } = manualCompute();
    const together = Promise.all([cache.get('x', compute), cache.get('x', compute)]);
    expect(state.calls).toBe(1);
    state.finish(new Float32Array(2));
    expect((await together).map((a) => a.cached)).toEqual([false, true]);
    const later = cache.get('x', compute);
    expect(state.calls).toBe(2);
    state.finish(new Float32Array(2));
    expect((await later).cached).toBe(false);
    expect(cache.stats.size).toBe(0);
  });

  it('a failed computation is not kept: the next request computes again', async () => {
    const cache = new TextFeatureCache(2);
    await expect(cache.get('x', () => Promise.reject(new Error('encoder failed')))).rejects.toThrow('encoder failed');
    expect((await cache.get('x', async () => new Float32Array(1))).cached).toBe(false);
  });

  it('refuses a negative size', () => {
    expect(() => new TextFeatureCache(-1)).toThrow('Expected an integer of at least 0 for the text feature cache size but received -1');
  });
});
