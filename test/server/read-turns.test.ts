// Request bodies read in turns (src/server/read-turns.ts): bodies whose bytes are all there at once are handed
// on a budget a turn of the event loop, every body advances, and a body that goes away does not hold the others.
// The turns are counted by a setImmediate of the test's own (one per turn of the loop), never by time.
import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { ReadTurns } from '../../src/server/read-turns.js';

const CHUNK = 64 * 1024;
const BUDGET = 256 * 1024;

/** `count` bodies of `chunks` chunks each, all written before anything reads them (as a flood of uploads is). */
function bodies(count: number, chunks: number): PassThrough[] {
  return Array.from({ length: count }, () => {
    const body = new PassThrough({ highWaterMark: CHUNK });
    for (let i = 0; i < chunks; i++) body.write(Buffer.alloc(CHUNK, i));
    body.end();
    return body;
  });
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

interface Reading {
  /** Bytes handed on in each turn of the loop, in order. */
  perTurn: number[];
  /** For each body, the turns in which it handed on a chunk. */
  turnsOf: number[][];
  received: number[];
}

/** Reads every body to its end, as uploads.ts does (a 'data' listener that tells `turns`, if given). */
function readAll(streams: PassThrough[], turns?: ReadTurns): Promise<Reading> {
  const reading: Reading = { perTurn: [0], turnsOf: streams.map(() => []), received: streams.map(() => 0) };
  let ended = 0;
  return new Promise((resolve, reject) => {
    const countTurn = (): void => {
      if (ended === streams.length) {
        resolve(reading);
        return;
      }
      reading.perTurn.push(0);
      setImmediate(countTurn);
    };
    setImmediate(countTurn);
    streams.forEach((body, i) => {
      body.on('data', (chunk: Buffer) => {
        reading.perTurn[reading.perTurn.length - 1] += chunk.length;
        reading.received[i] += chunk.length;
        if (reading.turnsOf[i].at(-1) !== reading.perTurn.length - 1) reading.turnsOf[i].push(reading.perTurn.length - 1);
        turns?.took(body, chunk.length);
      });
      body.once('end', () => ended++);
      body.once('error', reject);
    });
  });
}

describe('ReadTurns', () => {
  it('hands on 16 bodies of 1 MiB, all there at once, a budget a turn (without it: all 16 MiB in one turn)', async () => {
    const alone = await readAll(bodies(16, 16));
    expect(Math.max(...alone.perTurn)).toBe(16 * 16 * CHUNK);

    const turns = new ReadTurns(BUDGET);
    const { perTurn, received, turnsOf } = await readAll(bodies(16, 16), turns);
    expect(received).toEqual(Array(16).fill(16 * CHUNK));
    // The first turn: each body hands on the chunk it has (as each socket's first read does), then waits.
    const [first, ...rest] = perTurn.filter((b) => b > 0);
    expect(first).toBeLessThanOrEqual(BUDGET + 16 * CHUNK);
    // Then a turn hands on its budget, overrun by at most a chunk for each body it resumed (budget / chunk + 1).
    expect(Math.max(...rest)).toBeLessThanOrEqual(2 * BUDGET + CHUNK);
    expect(perTurn.filter((b) => b > 0).length).toBeGreaterThanOrEqual((16 * 16 * CHUNK) / (2 * BUDGET + CHUNK));
    // Every body advances: paused bodies are resumed oldest first, so none waits more than a round of the others.
    for (const seen of turnsOf) {
      const gaps = seen.slice(1).map((t, k) => t - seen[k]);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(16);
    }
    await nextTurn();
    expect(turns.waiting).toBe(0);
  });

  it('a body destroyed while it waits is dropped from the queue; the others are read to their end', async () => {
    const turns = new ReadTurns(BUDGET);
    const streams = bodies(4, 16);
    const gone = new PassThrough();
    gone.write(Buffer.alloc(CHUNK));
    // It is the first to spend the budget, so it waits; then it goes away as an aborted request does.
    gone.on('data', (chunk: Buffer) => {
      turns.took(gone, chunk.length);
      turns.took(gone, BUDGET);
      gone.destroy();
    });
    const { received } = await readAll(streams, turns);
    expect(gone.destroyed).toBe(true);
    expect(received).toEqual(Array(4).fill(16 * CHUNK));
    // A body paused on its last chunk may end before its turn comes: the next turn forgets it as well.
    await nextTurn();
    expect(turns.waiting).toBe(0);
  });

  it('a forgotten body stays paused: its answer is out, the rest of it is not read', async () => {
    const turns = new ReadTurns(BUDGET);
    const [answered, other] = bodies(2, 16);
    let read = 0;
    answered.on('data', (chunk: Buffer) => {
      read += chunk.length;
      turns.took(answered, chunk.length);
      turns.took(answered, BUDGET);
      turns.forget(answered);
    });
    const { received } = await readAll([other], turns);
    expect(received).toEqual([16 * CHUNK]);
    expect(answered.isPaused()).toBe(true);
    expect(read).toBe(CHUNK);
    await nextTurn();
    expect(turns.waiting).toBe(0);
  });

  it('a body destroyed at the head of the queue takes no turn: the one behind it is resumed in the next turn', async () => {
    const turns = new ReadTurns(BUDGET);
    const [gone, next] = [new PassThrough(), new PassThrough()];
    for (const body of [gone, next]) body.on('data', () => undefined);
    turns.took(gone, 4 * BUDGET);
    turns.took(next, CHUNK);
    expect([gone.isPaused(), next.isPaused(), turns.waiting]).toEqual([true, true, 2]);
    gone.destroy();
    await nextTurn();
    expect(next.isPaused()).toBe(false);
    expect(turns.waiting).toBe(0);
  });

  it('a forgotten body is never paused or queued again, nor counted', async () => {
    const turns = new ReadTurns(BUDGET);
    const [answered, other] = [new PassThrough(), new PassThrough()];
    for (const body of [answered, other]) body.on('data', () => undefined);
    turns.forget(answered);
    turns.took(answered, 4 * BUDGET);
    expect(answered.isPaused()).toBe(false);
    turns.took(other, CHUNK);
    expect(other.isPaused()).toBe(false);
    expect(turns.waiting).toBe(0);
  });

  it("a body read in 'readable' mode (multer draining a refused form) is neither paused nor counted", () => {
    const turns = new ReadTurns(BUDGET);
    const [drained, other] = [new PassThrough(), new PassThrough()];
    drained.on('readable', () => undefined);
    other.on('data', () => undefined);
    turns.took(drained, 4 * BUDGET);
    turns.took(other, CHUNK);
    expect([drained.readableFlowing, other.isPaused(), turns.waiting]).toEqual([false, false, 0]);
  });

  it('a body that the budget does not stop is never paused', async () => {
    const turns = new ReadTurns(BUDGET);
    const [body] = bodies(1, 4);
    const { received, perTurn } = await readAll([body], turns);
    expect(received).toEqual([4 * CHUNK]);
    expect(perTurn.filter((b) => b > 0)).toEqual([4 * CHUNK]);
  });
});
