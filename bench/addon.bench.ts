// `npm run bench:addon`: the addon's forward against Debian's Python torch on the same TorchScript files,
// same threads, batch 1 and 8, in interleaved rounds within one run (the machine is shared and noisy),
// after warm-up. Then the addon's memory over many forwards. The last line is one JSON object.
//
//   npm run bench:addon -- [--threads 2] [--iters 60] [--rounds 3] [--rss-forwards 10000]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { runtimeInfo, Tensor, TorchModel } from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    device: { type: 'string', default: 'cpu' },
    iters: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    'rss-forwards': { type: 'string', default: '10000' },
    python: { type: 'string', default: '/usr/bin/python3' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('npm run bench:addon -- [--threads 2] [--device cpu|cuda] [--iters 60] [--rounds 3] [--rss-forwards 10000] [--python PATH]');
  process.exit(0);
}
const threads = Number(args.threads);
const device = args.device as 'cpu' | 'cuda';
const iters = Number(args.iters);
const rounds = Number(args.rounds);
const rssForwards = Number(args['rss-forwards']);

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function stats(times: number[]) {
  const s = [...times].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return { n: s.length, p50: round(percentile(s, 50)), p95: round(percentile(s, 95)), p99: round(percentile(s, 99)) };
}

/** The Python side: a long-lived process answering one timing request per line. */
class PythonSide {
  private readonly lines: AsyncIterator<string>;
  private readonly child;

  constructor(python: string, folder: string) {
    const script = path.join(import.meta.dirname, 'python_runner.py');
    this.child = spawn(python, [script, folder, String(threads), device], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next(): Promise<Record<string, unknown>> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error('the Python side exited early (see its error above)');
    return JSON.parse(value);
  }

  async time(model: string, batch: number, n: number): Promise<number[]> {
    this.child.stdin.write(`${JSON.stringify({ model, batch, iters: n })}\n`);
    return (await this.next()).times_ms as number[];
  }

  close(): void {
    this.child.stdin.end();
  }
}

async function timeAddon(model: TorchModel, input: Tensor, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await model.forward([input]);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times;
}

function randomImage(batch: number): Tensor<'float32'> {
  const data = new Float32Array(batch * 3 * 224 * 224).map(() => Math.random() * 2 - 1);
  return Tensor.float32(data, [batch, 3, 224, 224]);
}

function rssMb(): number {
  globalThis.gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

async function main(): Promise<void> {
  const folder = mkdtempSync(path.join(tmpdir(), 'bench-addon-'));
  const python = new PythonSide(args.python as string, folder);
  try {
    const ready = await python.next();
    const runtime = runtimeInfo();
    console.log(
      `bench:addon  ${cpus()[0].model}, ${cpus().length} cores; node ${process.version}; addon on LibTorch ` +
        `${runtime.libtorchVersion}; Python torch ${ready.torch as string}; ${threads} thread(s) each side; ` +
        `OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? '(unset)'}`,
    );
    console.log(`model: torchvision resnet18 (101 classes), traced${device === 'cpu' ? ', optimised for inference' : ''} on both sides`);
    const model = await TorchModel.load(path.join(folder, 'resnet18.pt'), { threads, device });

    const results: Record<number, { addon: ReturnType<typeof stats>; python: ReturnType<typeof stats> }> = {};
    for (const batch of [1, 8]) {
      const n = batch === 1 ? iters : Math.max(5, Math.round(iters / 4));
      const input = randomImage(batch);
      process.stdout.write(`batch ${batch}: warm-up`);
      await timeAddon(model, input, 5);
      await python.time('resnet18', batch, 5);
      const addon: number[] = [];
      const py: number[] = [];
      for (let r = 0; r < rounds; r++) {
        process.stdout.write(`, round ${r + 1}/${rounds}`);
        addon.push(...(await timeAddon(model, input, n)));
        py.push(...(await python.time('resnet18', batch, n)));
      }
      process.stdout.write('\n');
      results[batch] = { addon: stats(addon), python: stats(py) };
    }
    await model.dispose();

    console.log('\n| batch | side | n | p50 ms | p95 ms | p99 ms | p50 ratio addon/python |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [batch, r] of Object.entries(results)) {
      const ratio = (r.addon.p50 / r.python.p50).toFixed(3);
      console.log(`| ${batch} | addon | ${r.addon.n} | ${r.addon.p50} | ${r.addon.p95} | ${r.addon.p99} | ${ratio} |`);
      console.log(`| ${batch} | python | ${r.python.n} | ${r.python.p50} | ${r.python.p95} | ${r.python.p99} | |`);
    }

    // Memory: many small forwards; the resident set must not keep growing.
    const mlp = await TorchModel.load(path.join(folder, 'mlp.pt'), { threads, device });
    const x = Tensor.float32(new Float32Array(64).fill(0.5), [1, 64]);
    for (let i = 0; i < 1000; i++) await mlp.forward([x]);
    const before = rssMb();
    process.stdout.write(`\nmemory: ${rssForwards} forwards of a small MLP: RSS ${before.toFixed(1)} MB`);
    let half = before;
    for (let i = 1; i <= rssForwards; i++) {
      await mlp.forward([x]);
      if (i % Math.max(1, Math.floor(rssForwards / 5)) === 0) process.stdout.write(` → ${rssMb().toFixed(1)}`);
      if (i === Math.floor(rssForwards / 2)) half = rssMb();
    }
    const after = rssMb();
    // A leak keeps growing; allocator and JIT caches settle. The second half tells them apart.
    console.log(
      ` MB; growth ${(after - before).toFixed(1)} MB, of which ${(after - half).toFixed(1)} MB in the second half` +
        (globalThis.gc ? '' : ' (run with --expose-gc for a steadier figure)'),
    );
    await mlp.dispose();

    const b1 = results[1];
    const b8 = results[8];
    console.log(
      JSON.stringify({
        bench: 'addon',
        model: 'resnet18',
        device,
        threads,
        libtorch: runtime.libtorchVersion,
        python_torch: ready.torch,
        addon_p50_ms: b1.addon.p50,
        addon_p95_ms: b1.addon.p95,
        addon_p99_ms: b1.addon.p99,
        python_p50_ms: b1.python.p50,
        python_p95_ms: b1.python.p95,
        python_p99_ms: b1.python.p99,
        ratio: Math.round((b1.addon.p50 / b1.python.p50) * 1000) / 1000,
        batch8_addon_p50_ms: b8.addon.p50,
        batch8_python_p50_ms: b8.python.p50,
        batch8_ratio: Math.round((b8.addon.p50 / b8.python.p50) * 1000) / 1000,
        rss_forwards: rssForwards,
        rss_before_mb: Math.round(before * 10) / 10,
        rss_growth_mb: Math.round((after - before) * 10) / 10,
        rss_growth_second_half_mb: Math.round((after - half) * 10) / 10,
      }),
    );
  } finally {
    python.close();
    rmSync(folder, { recursive: true, force: true });
  }
}

await main();
