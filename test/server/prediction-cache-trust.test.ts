// What a Redis entry must be to be served (validPredictions: exactly an answer this service makes), and the
// secret that signs the entries (CACHE_SECRET, required with REDIS_URL). Against a real Redis: redis.test.ts.
import { describe, expect, it } from 'vitest';

import { topClasses } from '../../src/classifier/classifier.js';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { validPredictions } from '../../src/server/prediction-cache.js';
import { toWorkshopPrediction } from '../../src/server/routes/predict.js';

const CLASSES = ['pizza', 'steak', 'ice_cream', 'sushi', 'ramen', 'tacos', 'pho'];
const entry = (class_name: string, probability: number) => ({ class_name, probability, confidence: `${(probability * 100).toFixed(2)}%` });

describe('validPredictions', () => {
  it("accepts what the service answers (predict.ts's toWorkshopPrediction of the top 5)", () => {
    const probabilities = [0.05, 0.1, 0.4, 0.2, 0.123456789, 0.07, 0.056543211];
    const answer = topClasses(probabilities, CLASSES, 5).map(toWorkshopPrediction);
    expect(answer.map((p) => p.class_name)).toContain('ice cream');
    expect(validPredictions(JSON.parse(JSON.stringify(answer)), CLASSES)).toEqual(answer);
    // fewer classes than 5: all of them
    const two = topClasses([0.3, 0.7], ['a', 'b'], 5).map(toWorkshopPrediction);
    expect(validPredictions(two, ['a', 'b'])).toEqual(two);
  });

  it.each([
    ['not an array', { predictions: [] }],
    ['a string', 'pizza'],
    ['numbers', [1, 2, 3]],
    ['empty', []],
    ['more than TOP_K', CLASSES.slice(0, 6).map((c) => entry(c, 0.1))],
    ['a class the model does not have', [entry('FORGED', 0.5)]],
    ['the mapping name, not the answer name', [entry('ice_cream', 0.5)]],
    ['a class twice', [entry('pizza', 0.5), entry('pizza', 0.4)]],
    ['probability above 1', [entry('pizza', 1.5)]],
    ['probability below 0', [entry('pizza', -0.1)]],
    ['probability not a number', [{ class_name: 'pizza', probability: '0.5', confidence: '50.00%' }]],
    ['not most probable first', [entry('pizza', 0.2), entry('steak', 0.5)]],
    ['a confidence that is not the probability', [{ class_name: 'pizza', probability: 0.5, confidence: '99.00%' }]],
    ['a field more', [{ ...entry('pizza', 0.5), extra: true }]],
    ['a field less', [{ class_name: 'pizza', probability: 0.5 }]],
    ['an entry that is not an object', [entry('pizza', 0.5), null]],
  ])('refuses %s', (_what, value) => {
    expect(validPredictions(value, CLASSES)).toBeUndefined();
  });
});

describe('CACHE_SECRET', () => {
  const secret = 'a'.repeat(32);

  it('is required with REDIS_URL, and the message says how to make one', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://localhost:6379', ENV_FILE: '/dev/null' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'redis://localhost:6379', ENV_FILE: '/dev/null' })).toThrow(
      /REDIS_URL is set but CACHE_SECRET is not.*openssl rand -hex 32/,
    );
    expect(loadConfig({ REDIS_URL: 'redis://localhost:6379', CACHE_SECRET: secret, ENV_FILE: '/dev/null' }).cacheSecret).toBe(secret);
    expect(loadConfig({ ENV_FILE: '/dev/null' }).cacheSecret).toBeUndefined();
  });

  it('has at least 32 characters without spaces; the message never repeats it', () => {
    for (const bad of ['short-secret-value', `${'b'.repeat(20)} ${'c'.repeat(20)}`]) {
      let message = '';
      try {
        loadConfig({ REDIS_URL: 'redis://localhost:6379', CACHE_SECRET: bad, ENV_FILE: '/dev/null' });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^Expected at least 32 characters without spaces for CACHE_SECRET but received \d+ characters/);
      expect(message).not.toContain(bad.slice(0, 10));
    }
  });
});
