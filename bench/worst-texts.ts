// `npm run bench:texts`: the service (demo model, default settings) under the worst texts an outside tester found,
// 64 requests at once, each a small photo and a distinct text of 1 MiB (UTF-8; `--kib` for another size: the
// service reads 64 KiB at most, and answers a longer text 413 without decoding it), while another process asks
// /health every 10 ms (load-client.ts --health, over node:http). Prints /health's p50 and p99, the service's peak
// RSS (and its RSS after the run), the requests per second and the answers by status, for each kind of text.
//
// The kinds (every request's text is new: a head of its own numbers it, in the kind's own characters, so that
// neither the prediction cache nor the token cache answers it):
//   punctuation   ASCII punctuation only, no space: a token per character
//   word          one word of lower-case letters, no space: one [UNK] however long
//   emoji         emoji only (two UTF-16 units each), no space: one [UNK]
//   accents       letters each followed by a combining accent (NFD's work, then stripped): one [UNK]
//   ordinary      English words and spaces: 126 words and the rest truncated
// Each of the `concurrency` loops sends the kinds in turn (request n: kind n mod kinds), until `seconds` have
// passed; the requests in flight then finish. Loopback only; the service is stopped at the end.
//   npm run bench:texts [-- --seconds 20] [-- --concurrency 64] [-- --kib 1024] [-- --kinds punctuation,word,emoji,accents,ordinary]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { MAX_TEXT_BYTES } from '../src/server/request-body.js';
import { scrapeMetrics } from '../scripts/lib/metrics.js';
import { SERVICE_NODE_FLAGS, startServer } from '../scripts/lib/service.js';
import { peakRssMb } from './peak-rss.js';
import { stats } from './results.js';

const KINDS = ['punctuation', 'word', 'emoji', 'accents', 'ordinary'] as const;
type Kind = (typeof KINDS)[number];

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '64' },
    kib: { type: 'string', default: '1024' },
    kinds: { type: 'string', default: KINDS.join(',') },
    help: { type: 'boolean', default: false },
  },
});
const usage = `Usage: npm run bench:texts [-- --seconds 20] [-- --concurrency 64] [-- --kib 1024] [-- --kinds ${KINDS.join(',')}]`;
if (args.help) {
  console.log(usage);
  process.exit(0);
}
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
const kinds = args.kinds!.split(',').filter(Boolean) as Kind[];
const TEXT_BYTES = Number(args.kib) * 1024;
/** The answer each request should get: a prediction, or 413 for a text over the service's bound. */
const EXPECTED = TEXT_BYTES <= MAX_TEXT_BYTES ? '200' : '413';
if (
  !Number.isInteger(seconds) ||
  seconds < 1 ||
  seconds > 300 ||
  !Number.isInteger(concurrency) ||
  concurrency < 1 ||
  concurrency > 1024 ||
  !Number.isInteger(TEXT_BYTES / 1024) ||
  TEXT_BYTES < 1024 ||
  TEXT_BYTES > 1024 * 1024
) {
  console.error(`bench:texts: --seconds from 1 to 300, --concurrency from 1 to 1024 and --kib from 1 to 1024 (integers). ${usage}`);
  process.exit(2);
}
if (kinds.length === 0 || kinds.some((k) => !KINDS.includes(k))) {
  console.error(`bench:texts: --kinds takes some of ${KINDS.join(', ')}. ${usage}`);
  process.exit(2);
}
const repo = path.resolve(import.meta.dirname, '..');
const log = (m: string) => process.stderr.write(`[bench:texts] ${m}\n`);

// ------------------------------------------------------------------------------------------------------
// The texts: a body of each kind made once, and a head of the kind's characters that numbers each request.

const random = (() => {
  let state = 20260101;
  return (n: number) => {
    state = (state * 1103515245 + 12345) >>> 0;
    return (state >>> 8) % n;
  };
})();
const PUNCTUATION = [...'!"#$%&\'()*+,-./:;<=>?@\\^_`{|}~'];
const LETTERS = [...'abcdefghijklmnopqrstuvwxyz'];
const EMOJI = Array.from({ length: 80 }, (_, i) => String.fromCodePoint(0x1f600 + i));
const ACCENTS = LETTERS.flatMap((l) => ['\u0300', '\u0301', '\u0302', '\u0308', '\u0327'].map((a) => l + a));
const WORDS = 'image of food pizza with cheese and tomato sauce a plate sushi rolls fresh salad grilled steak fries soup bowl'.split(' ');
const ALPHABETS: Record<Kind, string[]> = { punctuation: PUNCTUATION, word: LETTERS, emoji: EMOJI, accents: ACCENTS, ordinary: WORDS.map((w) => `${w} `) };

/** The number n in the kind's characters (digits of base alphabet.length). */
function head(kind: Kind, n: number): string {
  const alphabet = ALPHABETS[kind];
  let s = '';
  do {
    s += alphabet[n % alphabet.length];
    n = Math.floor(n / alphabet.length);
  } while (n > 0);
  return `${s}${alphabet[0]}`.repeat(kind === 'ordinary' ? 1 : 4);
}

/** Random characters of the kind, up to `bytes` bytes of UTF-8. */
function body(kind: Kind, bytes: number): string {
  const alphabet = ALPHABETS[kind];
  const parts: string[] = [];
  for (let used = 0; ; ) {
    const c = alphabet[random(alphabet.length)];
    used += Buffer.byteLength(c);
    if (used > bytes) break;
    parts.push(c);
  }
  return parts.join('');
}

const HEAD_BYTES = 256;
const bodies = Object.fromEntries(kinds.map((k) => [k, body(k, TEXT_BYTES - HEAD_BYTES)])) as Record<Kind, string>;
const text = (kind: Kind, n: number) => head(kind, n) + bodies[kind];
for (const k of kinds) {
  const t = text(k, 123_456);
  if (Buffer.byteLength(t) > TEXT_BYTES) throw new Error(`a ${k} text of ${Buffer.byteLength(t)} bytes`);
  log(`  ${k}: ${Buffer.byteLength(t)} bytes, ${t.length} UTF-16 units: ${JSON.stringify(t.slice(0, 24))}…`);
}
// 384x288: no side under 256, so that sharp resizes it off the event loop (a smaller photo is enlarged by
// PIL's resampling in TypeScript, on the event loop: a cost of the photo, not of the text).
const photo = await sharp({ create: { width: 384, height: 288, channels: 3, noise: { type: 'gaussian', mean: 120, sigma: 40 } } } as never)
  .jpeg()
  .toBuffer();

// ------------------------------------------------------------------------------------------------------
// The service, the /health prober, the texts.

const server = await startServer({}, repo, { entry: 'dist', cleanEnv: true, nodeFlags: SERVICE_NODE_FLAGS });
process.once('exit', () => {
  if (server.alive()) server.child.kill('SIGKILL');
});
const pid = server.child.pid!;
const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const idleRss = rssMb();
log(`service ${server.url}, RSS ${idleRss.toFixed(0)} MB idle; ${concurrency} loops of ${kinds.join(', ')} texts, ${seconds} s`);

/** load-client.ts --health in a process of its own: /health every 10 ms over node:http. */
function healthProbe(): Promise<{ requests: number; errors: number; p50?: number; p99?: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/load-client.ts', '--url', server.url, '--health', '--seconds', String(seconds)], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? ''));
      } catch (err) {
        reject(new Error(`load-client --health exited ${code} without a result`, { cause: err }));
      }
    });
  });
}

interface KindResult {
  statuses: Record<string, number>;
  cache_hits: number;
  times: number[];
}
const results = Object.fromEntries(kinds.map((k) => [k, { statuses: {}, cache_hits: 0, times: [] } as KindResult])) as Record<Kind, KindResult>;

async function one(n: number): Promise<void> {
  const kind = kinds[n % kinds.length];
  const r = results[kind];
  const form = new FormData();
  form.append('image', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
  form.append('text', text(kind, n));
  const start = performance.now();
  let status = 'error';
  try {
    const res = await fetch(`${server.url}/predict`, { method: 'POST', body: form });
    const answer = (await res.json().catch(() => ({}))) as { cache_hit?: boolean };
    status = String(res.status);
    if (status === EXPECTED) r.times.push(performance.now() - start);
    if (answer.cache_hit === true) r.cache_hits++;
  } catch {
    // counted as 'error'
  }
  r.statuses[status] = (r.statuses[status] ?? 0) + 1;
}

const loadBefore = loadavg()[0];
const health = healthProbe();
const started = performance.now();
const end = started + seconds * 1000;
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) await one(next++);
  }),
);
const elapsed = (performance.now() - started) / 1000;
const probe = await health;
const peak = peakRssMb(pid);
const after = rssMb();
// The service's own view, as bench:uploads reads it: the event loop's lag, and /health from its arrival to its answer.
const metrics = await scrapeMetrics(server.url);
const lag = metrics.get('nodejs_eventloop_lag_p99_seconds');
const bucket = (le: string) => metrics.get(`http_request_duration_seconds_bucket{le="${le}",route="/health",method="GET",status="200"}`) ?? NaN;
await server.stop();

const ms = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 100) / 100);
const perKind = Object.fromEntries(
  kinds.map((k) => {
    const r = results[k];
    const s = r.times.length > 0 ? stats(r.times) : undefined;
    return [k, { ok: r.times.length, statuses: r.statuses, cache_hits: r.cache_hits, p50_ms: ms(s?.p50), p99_ms: ms(s?.p99) }];
  }),
);
const ok = kinds.reduce((n, k) => n + results[k].times.length, 0);
const errors = kinds.reduce((n, k) => n + Object.entries(results[k].statuses).reduce((e, [s, c]) => e + (s === EXPECTED ? 0 : c), 0), 0);
const result = {
  concurrency,
  seconds,
  text_bytes: TEXT_BYTES,
  expected_status: Number(EXPECTED),
  elapsed_s: Math.round(elapsed * 10) / 10,
  kinds: perKind,
  requests_per_s: Math.round((ok / elapsed) * 10) / 10,
  errors,
  health: { requests: probe.requests, errors: probe.errors, p50_ms: ms(probe.p50), p99_ms: ms(probe.p99) },
  eventloop_lag_p99_ms: lag !== undefined ? Math.round(lag * 1e5) / 100 : null,
  health_in_service_within_10_ms: bucket('0.01') / bucket('+Inf'),
  idle_rss_mb: Math.round(idleRss),
  peak_rss_mb: Math.round(peak),
  rss_after_mb: Math.round(after),
  // The machine's load (1 minute) before and after: other work on the same cores shows in /health's figures.
  load_average: [loadBefore, loadavg()[0]].map((l) => Math.round(l * 10) / 10),
  targets: { peak_rss_under_600_mb: peak < 600, health_p99_under_10_ms: (probe.p99 ?? Infinity) < 10 },
};
log(
  `/health p50 ${probe.p50?.toFixed(2)} ms p99 ${probe.p99?.toFixed(2)} ms (target < 10), peak RSS ${result.peak_rss_mb} MB (target < 600), ` +
    `${result.rss_after_mb} MB after; event loop lag p99 ${result.eventloop_lag_p99_ms} ms; ${result.requests_per_s} requests/s answered ${EXPECTED}, ${errors} other answers, in ${result.elapsed_s} s; load ${result.load_average.join(' -> ')}`,
);
for (const k of kinds) log(`  ${k}: ${JSON.stringify(perKind[k])}`);
console.log(JSON.stringify(result));
