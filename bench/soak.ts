// `npm run soak`: the service (demo model, its defaults) for a long while under a mix of good uploads, bad inputs
// and reloads, watching two things: no good request ever fails, and the memory settles (the resident size after
// the warm-up grows by less than 5 %). Exits 1 when either is not met.
//
//   npm run soak [-- --seconds 600] [-- --concurrency 4] [-- --reload-every 15] [-- --rss-limit 0.05]
// (npm test runs a 60-second version, test/bench/soak.test.ts: a minute is too short to tell 5 % of growth from
// noise, so there the limit on growth is wider, and catches only a fast leak.)
// The mix: 4 loops of good uploads (photos of ../shared/data, or synthetic ones, with various texts), one loop of
// bad inputs (random bytes, a truncated JPEG, an empty file, text as the image, no image, a malformed form, an
// oversized upload, a wrong method), and a reload every few seconds. RSS is sampled every second; after the
// warm-up (the first fifth) a straight line is fitted to the samples (least squares), and the growth is the
// line's rise from the warm-up's end to the run's, over its value there: a leak makes that line climb, while
// the transient second model of a reload (old and new side by side for a moment) or a burst of large batches
// only scatters the samples around it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { SHARED_DATA } from '../scripts/lib/shared-data.js';
import { startServer } from '../scripts/lib/service.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '600' },
    concurrency: { type: 'string', default: '4' },
    'reload-every': { type: 'string', default: '15' },
    'rss-limit': { type: 'string', default: '0.05' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('Usage: npm run soak [-- --seconds 600] [-- --concurrency 4] [-- --reload-every 15] [-- --rss-limit 0.05]');
  process.exit(0);
}
const seconds = Number(args.seconds);
const reloadEvery = Number(args['reload-every']);
/** The largest RSS growth after the warm-up that passes, as a fraction. */
const rssLimit = Number(args['rss-limit']);
for (const [name, value] of [
  ['--seconds', seconds],
  ['--reload-every', reloadEvery],
  ['--rss-limit', rssLimit],
] as const) {
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`soak: expected a positive number for ${name}`);
    process.exit(2);
  }
}
const repo = path.resolve(import.meta.dirname, '..');
const log = (m: string) => process.stderr.write(`[soak] ${m}\n`);

async function goodPhotos(): Promise<Buffer[]> {
  const val = path.join(SHARED_DATA, 'food', 'val');
  if (existsSync(val)) {
    return readdirSync(val).flatMap((c) => readdirSync(path.join(val, c)).map((f) => readFileSync(path.join(val, c, f))));
  }
  return Promise.all(
    Array.from({ length: 24 }, (_, i) =>
      sharp({ create: { width: 400 + i * 7, height: 300, channels: 3, background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 } } })
        .jpeg()
        .toBuffer(),
    ),
  );
}
const photos = await goodPhotos();
const texts = ['Image of food', '', 'a plate of sushi', 'Image of pizza', 'what is this dish?', 'steak, medium rare'];
const truncated = photos[0].subarray(0, photos[0].length >> 1);

const server = await startServer({ MAX_UPLOAD_MB: '2', PREDICTION_CACHE_SIZE: '20' }, repo, { entry: 'dist', cleanEnv: true });
const pid = server.child.pid!;
/** The service's resident size in MB; NaN once it has exited (counted as a failure below). */
const rss = () => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
};
log(`service ${server.url}; ${seconds} s, ${args.concurrency} loops of good uploads, a loop of bad inputs, a reload every ${reloadEvery} s`);

const end = performance.now() + seconds * 1000;
const good = { ok: 0, failed: 0, statuses: {} as Record<string, number> };
const bad: Record<string, Record<string, number>> = {};
let reloads = 0;
let reloadFailures = 0;

async function post(body: FormData | Buffer | string, headers: Record<string, string> = {}, method = 'POST'): Promise<number> {
  try {
    const res = await fetch(`${server.url}/predict`, { method, body: method === 'GET' ? undefined : (body as FormData), headers });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

function form(image: Buffer | undefined, text?: string, field = 'image'): FormData {
  const f = new FormData();
  if (image) f.append(field, new Blob([image]), 'photo.jpg');
  if (text !== undefined) f.append('text', text);
  return f;
}

const badInputs: [string, () => Promise<number>][] = [
  ['random bytes', () => post(form(Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 255))))],
  ['truncated JPEG', () => post(form(truncated))],
  ['empty file', () => post(form(Buffer.alloc(0)))],
  [
    'text as the image',
    () =>
      post(
        (() => {
          const f = new FormData();
          f.append('image', 'not a file');
          return f;
        })(),
      ),
  ],
  ['no image', () => post(form(undefined, 'Image of food'))],
  ['malformed form', () => post('--x\r\nnot a header\r\n', { 'content-type': 'multipart/form-data; boundary=x' })],
  ['oversized upload', () => post(form(Buffer.alloc(3 * 1024 * 1024, 7)))],
  ['wrong method', () => post('', {}, 'GET')],
];

const samples: number[] = [];
let died = false;
const sampler = setInterval(() => {
  const mb = rss();
  if (Number.isNaN(mb)) died = true;
  else samples.push(mb);
}, 1000);
let n = 0;
await Promise.all([
  ...Array.from({ length: Number(args.concurrency) }, async () => {
    while (performance.now() < end) {
      const i = n++;
      const status = await post(form(photos[i % photos.length], texts[i % texts.length]));
      good.statuses[status] = (good.statuses[status] ?? 0) + 1;
      if (status === 200) good.ok++;
      else good.failed++;
    }
  }),
  (async () => {
    let i = 0;
    while (performance.now() < end) {
      const [name, send] = badInputs[i++ % badInputs.length];
      const status = await send();
      bad[name] ??= {};
      bad[name][status] = (bad[name][status] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 50));
    }
  })(),
  (async () => {
    while (performance.now() + reloadEvery * 1000 < end) {
      await new Promise((r) => setTimeout(r, reloadEvery * 1000));
      const res = await fetch(`${server.url}/reload_model`, { method: 'POST' }).catch(() => undefined);
      reloads++;
      if (res?.status !== 200) reloadFailures++;
      await res?.arrayBuffer();
    }
  })(),
]);
clearInterval(sampler);
const exit = await server.stop();

const fifth = Math.max(1, Math.floor(samples.length / 5));
/** The least-squares line through ys (at x = 0, 1, ...): its value at the first and at the last x. */
function fitted(ys: number[]): [number, number] {
  const n = ys.length;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of ys.entries()) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return [my - slope * mx, my + slope * (n - 1 - mx)];
}
const [afterWarmup, atEnd] = fitted(samples.slice(fifth));
const growth = (atEnd - afterWarmup) / afterWarmup;
/** The service's own account of what went wrong: its error log lines (level 50 and above), the first few. */
const errorLogs = server.logs
  .filter((line) => Number(line.level) >= 50)
  .slice(0, 10)
  .map((line) => {
    const err = line.err as { message?: string; code?: string; stack?: string } | undefined;
    return { msg: line.msg, err: err ? { message: err.message, code: err.code, stack: err.stack?.split('\n').slice(0, 6).join('\n') } : undefined };
  });
const badFive = Object.values(bad).some((s) => Object.keys(s).some((status) => Number(status) >= 500 || status === '0'));
const result = {
  seconds,
  good_requests: good.ok + good.failed,
  good_failed: good.failed,
  good_statuses: good.statuses,
  bad_inputs: bad,
  reloads,
  reload_failures: reloadFailures,
  rss_mb: { after_warmup: Math.round(afterWarmup), at_end: Math.round(atEnd), max: Math.round(Math.max(...samples)) },
  rss_growth: Math.round(growth * 10000) / 10000,
  rss_limit: rssLimit,
  rss_samples_mb: samples.filter((_, i) => i % 5 === 0).map(Math.round),
  exit,
  died_during_run: died,
  error_logs: errorLogs,
  ok: !died && good.failed === 0 && reloadFailures === 0 && !badFive && growth < rssLimit && exit.code === 0,
};
log(
  `${result.good_requests} good requests, ${good.failed} failed; ${reloads} reloads (${reloadFailures} failed); ` +
    `RSS ${result.rss_mb.after_warmup} -> ${result.rss_mb.at_end} MB (${(growth * 100).toFixed(1)} %, limit ${(rssLimit * 100).toFixed(0)} %); bad inputs ${badFive ? 'got a 5xx or no answer' : 'all 4xx'}`,
);
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
