// A load client for `npm run bench`, in a process of its own: `concurrency` loops, each sending POST /predict
// with the next photo of a folder (every request a distinct photo, in turn), for `seconds`; or, with
// --health, GET /health every 10 ms (the service's responsiveness while another client loads it). Prints one
// JSON line: requests, errors by status, answers from the prediction cache, rate, latency percentiles.
// --distinct appends the request's number to each photo's bytes (after the image's end, where decoders do not
// look), so that a folder of a few photos never sends the same bytes twice: none can come from the cache.
//
//   node --import tsx bench/load-client.ts --url URL --photos DIR [--concurrency 4] [--seconds 10]
//        [--text same|different] [--distinct]
//   node --import tsx bench/load-client.ts --url URL --health [--seconds 10]
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { stats } from './results.js';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    photos: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '10' },
    text: { type: 'string', default: 'same' },
    health: { type: 'boolean', default: false },
    distinct: { type: 'boolean', default: false },
  },
});
if (!args.url || (!args.health && !args.photos) || !['same', 'different'].includes(args.text!)) {
  console.error('Usage: load-client.ts --url URL (--photos DIR [--concurrency N] [--text same|different] [--distinct] | --health) [--seconds S]');
  process.exit(2);
}
const url = args.url;
const seconds = Number(args.seconds);
const end = performance.now() + seconds * 1000;

if (args.health) {
  // node:http on one kept-alive connection rather than fetch: fetch's own overhead (its p99 is ~5 ms against an
  // idle service on two cores) would be counted as the service's.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (): Promise<number> =>
    new Promise((resolve, reject) => {
      http
        .get(`${url}/health`, { agent }, (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
          res.once('error', reject);
        })
        .once('error', reject);
    });
  const times: number[] = [];
  let errors = 0;
  while (performance.now() < end) {
    const start = performance.now();
    try {
      if ((await get()) === 200) times.push(performance.now() - start);
      else errors++;
    } catch {
      errors++;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  agent.destroy();
  console.log(JSON.stringify({ requests: times.length, errors, ...stats(times) }));
  process.exit(0);
}

const photos = readdirSync(args.photos!)
  .filter((f) => /\.(jpe?g|png)$/i.test(f))
  .sort()
  .map((f) => ({ bytes: readFileSync(path.join(args.photos!, f)), type: /\.png$/i.test(f) ? 'image/png' : 'image/jpeg' }));
if (photos.length === 0) {
  console.error(`load-client: no photos in ${args.photos}`);
  process.exit(2);
}
const concurrency = Number(args.concurrency);
const times: number[] = [];
const statuses: Record<string, number> = {};
let next = 0;
let cacheHits = 0;
const RUN = randomInt(1_000_000);

async function one(n: number): Promise<void> {
  const form = new FormData();
  const photo = photos[n % photos.length];
  const bytes = args.distinct ? [photo.bytes, Buffer.from(` ${RUN} ${n}`)] : [photo.bytes];
  form.append('image', new Blob(bytes, { type: photo.type }), `photo-${n}.${photo.type === 'image/png' ? 'png' : 'jpg'}`);
  // The same text as the workshop's clients send, or a text never seen before (its features computed anew):
  // numbered, and marked with this client's run so that no earlier run of the benchmark has sent it.
  form.append('text', args.text === 'same' ? 'Image of food' : `Image of food number ${n} of run ${RUN}, plated at ${(n * 7919) % 1000} degrees`);
  const start = performance.now();
  let status = 'error';
  try {
    const res = await fetch(`${url}/predict`, { method: 'POST', body: form });
    const body = (await res.json().catch(() => ({}))) as { cache_hit?: boolean };
    status = String(res.status);
    if (res.status === 200) times.push(performance.now() - start);
    // An answer from the prediction cache costs nothing: counted, so that a run can show it had none.
    if (body.cache_hit === true) cacheHits++;
  } catch {
    // counted below as 'error'
  }
  statuses[status] = (statuses[status] ?? 0) + 1;
}

const started = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) await one(next++);
  }),
);
const elapsed = (performance.now() - started) / 1000;
const errors = Object.entries(statuses).reduce((n, [status, count]) => n + (status === '200' ? 0 : count), 0);
console.log(JSON.stringify({ requests: times.length, errors, statuses, cache_hits: cacheHits, requests_per_s: times.length / elapsed, ...stats(times) }));
