// PredictionCache: its key (what makes two requests the same), LRU eviction, clear, and turning it off.
import { describe, expect, it, vi } from 'vitest';

import { imageDigest, MemoryPredictionCache, predictionKey, type CachedPrediction } from '../../src/server/prediction-cache.js';
import { toWorkshopPrediction } from '../../src/server/routes/predict.js';

const answer = (name: string): CachedPrediction[] => [{ class_name: name, probability: 1, confidence: '100.00%' }];
const bytes = (...values: number[]) => imageDigest(Uint8Array.from(values));

describe('predictionKey', () => {
  it('depends on the model, the text and every image byte', () => {
    const base = predictionKey('model-a', 'Image of food', bytes(1, 2, 3));
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(predictionKey('model-a', 'Image of food', bytes(1, 2, 3))).toBe(base);
    expect(predictionKey('model-b', 'Image of food', bytes(1, 2, 3))).not.toBe(base);
    expect(predictionKey('model-a', 'Image of food ', bytes(1, 2, 3))).not.toBe(base);
    expect(predictionKey('model-a', 'Image of food', bytes(1, 2, 4))).not.toBe(base);
  });

  it('cannot be fooled by moving bytes between the text and the image', () => {
    expect(predictionKey('m', 'ab', bytes(99))).not.toBe(predictionKey('m', 'a', imageDigest(Buffer.from('bc'))));
  });
});

describe('MemoryPredictionCache', () => {
  it('evicts the least recently used entry when full, and counts hits and misses', async () => {
    const cache = new MemoryPredictionCache(2);
    await cache.set('a', answer('a'));
    await cache.set('b', answer('b'));
    expect(await cache.get('a')).toEqual(answer('a')); // a is now the most recent
    await cache.set('c', answer('c')); // evicts b
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('c')).toEqual(answer('c'));
    expect(cache.stats).toEqual({ size: 2, max_size: 2, hits: 2, misses: 1, errors: 0 });
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('size 0 turns it off', async () => {
    const cache = new MemoryPredictionCache(0);
    await cache.set('a', answer('a'));
    expect(await cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('entries expire after the TTL, not before', async () => {
    // lru-cache reads its time from the global performance.now(), and keeps a reading for 1 ms (a timer forgets
    // it): the test sets that clock and runs the timer, rather than sleeping past the TTL.
    let now = 1_000_000;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const cache = new MemoryPredictionCache(10, 1);
      await cache.set('a', answer('a'));
      now += 999;
      expect(await cache.get('a')).toEqual(answer('a'));
      vi.advanceTimersByTime(1);
      now += 2;
      expect(await cache.get('a')).toBeUndefined();
      expect(cache.size).toBe(0);
    } finally {
      vi.useRealTimers();
      clock.mockRestore();
    }
  });
});

describe("the workshop's prediction fields", () => {
  it("class_name with '_' as spaces, confidence as a percentage with two decimals", () => {
    expect(toWorkshopPrediction({ className: 'apple_pie', index: 0, probability: 0.93124 })).toEqual({
      class_name: 'apple pie',
      probability: 0.93124,
      confidence: '93.12%',
    });
    expect(toWorkshopPrediction({ className: 'baby_back_ribs', index: 1, probability: 1 }).confidence).toBe('100.00%');
    expect(toWorkshopPrediction({ className: 'x', index: 2, probability: 0.000049 }).confidence).toBe('0.00%');
  });
});
