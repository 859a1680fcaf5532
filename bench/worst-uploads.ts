// `npm run bench:uploads`: the service (demo model, its defaults) under the worst uploads an outside tester found,
// 64 at once, while ordinary photos keep coming and another process asks /health every 10 ms. Prints the peak RSS
// of the service, /health's latency, the ordinary predictions' latency, and what the costly ones got.
//
// The worst uploads (made here with sharp): a 6000x6000 CMYK JPEG (250 MiB to decode whole), a 6000x6000 RGBA
// PNG (decoded whole for PIL's alpha semantics), a 1x39,000,000 PNG (two seconds of CPU to read its rows). Each
// is sent with a few bytes of its own appended (load-client.ts --distinct), so that none is answered from the
// prediction cache: every one is decoded.
//
// Four processes share the machine's cores besides this one: the service; the client of the worst uploads; the
// client of the ordinary photos (one at a time, each distinct); and the /health prober. --client-nice N runs the client of the worst uploads at a
// lower priority (on a deployment the clients are other machines; here a client sending 64 uploads of 10 MiB
// takes a third of two cores); by default it runs at the priority the others do.
// The service runs with npm start's Node flags (--v8-pool-size=1); --node-flags=... runs it with others instead
// (--node-flags '' for Node's defaults), to compare. The `=` form, as the value starts with a dash.
//   npm run bench:uploads [-- --seconds 30] [-- --concurrency 64] [-- --client-nice 0] [-- --node-flags=--flag=value]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { scrapeMetrics } from '../scripts/lib/metrics.js';
import { SERVICE_NODE_FLAGS, startServer } from '../scripts/lib/service.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '64' },
    'client-nice': { type: 'string', default: '0' },
    'node-flags': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('Usage: npm run bench:uploads [-- --seconds 30] [-- --concurrency 64] [-- --client-nice 0] [-- --node-flags=--flag=value]');
  process.exit(0);
}
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
const clientNice = Number(args['client-nice']);
for (const [name, value, min] of [
  ['--seconds', seconds, 1],
  ['--concurrency', concurrency, 1],
  ['--client-nice', clientNice, 0],
] as const) {
  if (!Number.isInteger(value) || value < min || (name === '--client-nice' && value > 19)) {
    console.error(
      `bench:uploads: expected an integer ${name === '--client-nice' ? 'from 0 to 19' : 'of at least 1'} for ${name} but received ${String(value)}`,
    );
    process.exit(2);
  }
}
const repo = path.resolve(import.meta.dirname, '..');
const log = (m: string) => process.stderr.write(`[bench:uploads] ${m}\n`);

log('making the worst images (a few seconds)');
const work = mkdtempSync(path.join(tmpdir(), 'worst-uploads-'));
const worst: { name: string; bytes: Buffer }[] = [
  {
    name: 'cmyk-6000x6000.jpg',
    bytes: await sharp({ create: { width: 6000, height: 6000, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 30 } } } as never)
      .blur(3)
      .toColourspace('cmyk')
      .jpeg({ quality: 70 })
      .toBuffer(),
  },
  {
    name: 'rgba-6000x6000.png',
    bytes: await sharp({ create: { width: 6000, height: 6000, channels: 4, background: { r: 30, g: 140, b: 60, alpha: 0.6 } } })
      .png({ compressionLevel: 9 })
      .toBuffer(),
  },
  {
    name: 'thin-1x39000000.png',
    bytes: await sharp({ create: { width: 1, height: 39_000_000, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .png({ compressionLevel: 9 })
      .toBuffer(),
  },
];
for (const w of worst) {
  log(`  ${w.name}: ${(w.bytes.length / 1024).toFixed(0)} KiB`);
  writeFileSync(path.join(work, w.name), w.bytes);
}
const ordinaryDir = path.join(work, 'ordinary');
mkdirSync(ordinaryDir);
await sharp({ create: { width: 512, height: 384, channels: 3, noise: { type: 'gaussian', mean: 120, sigma: 40 } } } as never)
  .jpeg()
  .toFile(path.join(ordinaryDir, 'ordinary.jpg'));

const nodeFlags = args['node-flags']?.split(' ').filter(Boolean) ?? SERVICE_NODE_FLAGS;
const server = await startServer({ MAX_UPLOAD_MB: '10', MAX_QUEUE: '256' }, repo, { entry: 'dist', cleanEnv: true, nodeFlags });
// Whatever happens below (a client that fails, an answer from the cache), the service does not outlive this run.
process.once('exit', () => {
  if (server.alive()) server.child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
const pid = server.child.pid!;
const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const idleRss = rss();
log(`service ${server.url} (node ${nodeFlags.join(' ')}), RSS ${idleRss.toFixed(0)} MB idle; ${concurrency} loops of worst uploads, ${seconds} s`);

/** A load-client.ts process (nice'd by `niceness`); resolves to its JSON line. */
function client(clientArgs: string[], niceness: number): Promise<Record<string, unknown>> {
  const command = [process.execPath, '--import', 'tsx', 'bench/load-client.ts', '--url', server.url, '--seconds', String(seconds), ...clientArgs];
  const [file, ...rest] = niceness > 0 ? ['nice', '-n', String(niceness), ...command] : command;
  return new Promise((resolve, reject) => {
    const child = spawn(file, rest, { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}'));
      } catch (err) {
        reject(new Error(`load-client ${clientArgs.join(' ')} exited ${code} without a result`, { cause: err }));
      }
    });
  });
}

const worstClient = client(['--photos', work, '--concurrency', String(concurrency), '--distinct'], clientNice);
// Ordinary photos meanwhile (another client's), and /health from a process of its own.
const ordinaryClient = client(['--photos', ordinaryDir, '--concurrency', '1', '--distinct'], 0);
const health = (await client(['--health'], 0)) as { p50?: number; p99?: number; errors?: number };
const [worstResult, ordinary] = (await Promise.all([worstClient, ordinaryClient])) as {
  statuses: Record<string, number>;
  cache_hits: number;
  p50?: number;
  p99?: number;
}[];
const statuses = worstResult.statuses;
if (Number(worstResult.cache_hits) > 0) throw new Error(`${String(worstResult.cache_hits)} worst uploads were answered from the cache`);
const peak = peakRss();
const metrics = await scrapeMetrics(server.url);
const lag = metrics.get('nodejs_eventloop_lag_p99_seconds');
// The service's own view of /health: the time from its arrival to the end of its answer (no client, no network).
const healthBucket = (le: string) => metrics.get(`http_request_duration_seconds_bucket{le="${le}",route="/health",method="GET",status="200"}`) ?? NaN;
const healthInService = { within_5_ms: healthBucket('0.005') / healthBucket('+Inf'), within_10_ms: healthBucket('0.01') / healthBucket('+Inf') };
await server.stop();
rmSync(work, { recursive: true, force: true });

const result = {
  concurrency,
  seconds,
  client_nice: clientNice,
  node_flags: nodeFlags,
  worst_uploads: statuses,
  ordinary: { statuses: ordinary.statuses, p50_ms: ordinary.p50, p99_ms: ordinary.p99 },
  health_p50_ms: health.p50,
  health_p99_ms: health.p99,
  health_errors: health.errors,
  eventloop_lag_p99_ms: lag !== undefined ? lag * 1000 : null,
  health_in_service: healthInService,
  idle_rss_mb: Math.round(idleRss),
  peak_rss_mb: Math.round(peak),
  targets: { peak_rss_under_1_5_gb: peak < 1536, health_p99_under_10_ms: (health.p99 ?? Infinity) < 10 },
};
log(
  `peak RSS ${result.peak_rss_mb} MB (target < 1536), /health p99 ${health.p99?.toFixed(2)} ms (target < 10), ` +
    `ordinary p50 ${ordinary.p50?.toFixed(0)} ms p99 ${ordinary.p99?.toFixed(0)} ms, worst uploads ${JSON.stringify(statuses)}`,
);
console.log(JSON.stringify(result));
