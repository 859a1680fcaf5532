// `npm run bench:addon`: the addon's forward against Debian's Python torch on the same TorchScript files,
// same threads, batch 1 and 8, in interleaved rounds within one run (the machine is shared and noisy),
// after warm-up. Then two models side by side (their own inference threads), a tiny MLP's fixed cost against
// Python at 1 and 2 threads, mobilenet_v3_small after another model in fresh processes (and the LibTorch warning
// lines they print), and the addon's memory over many forwards. The last line is one JSON object.
//
//   npm run bench:addon -- [--threads 2] [--iters 60] [--rounds 3] [--rss-forwards 10000]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
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

  async time(model: string, batch: number, n: number, threadsOverride?: number): Promise<number[]> {
    this.child.stdin.write(`${JSON.stringify({ model, batch, iters: n, threads: threadsOverride ?? threads })}\n`);
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

function median(values: number[]): number {
  return stats(values).p50;
}

/** One forward of each model at once (Promise.all), `n` times: the wall time of each pair. */
async function timePairs(a: TorchModel, b: TorchModel, input: Tensor, n: number, cpu?: { ms: number; wall: number }): Promise<number[]> {
  const times: number[] = [];
  const used = process.cpuUsage();
  const begin = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await Promise.all([a.forward([input]), b.forward([input])]);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  if (cpu) {
    const d = process.cpuUsage(used);
    cpu.ms += (d.user + d.system) / 1000;
    cpu.wall += Number(process.hrtime.bigint() - begin) / 1e6;
  }
  return times;
}

/**
 * mobilenet_v3_small (2 threads, optimised) in a fresh process, alone or after an MLP was loaded, run and
 * disposed: the median forward, and the LibTorch warning lines its stderr got (at the default log level).
 */
function sequenceChild(folder: string, withMlp: boolean, forwards: number): Promise<{ p50: number; warnings: number; rawWarnings: number }> {
  const script = path.join(folder, 'sequence.mts');
  writeFileSync(
    script,
    `import { Tensor, TorchModel } from ${JSON.stringify(pathToFileURL(path.join(import.meta.dirname, '..', 'src', 'index.ts')).href)};
    const [folder, withMlp, forwards] = [process.argv[2], process.argv[3] === '1', Number(process.argv[4])];
    if (withMlp) {
      const mlp = await TorchModel.load(folder + '/mlp.pt', { threads: 2 });
      const x = Tensor.float32(new Float32Array(64).fill(0.5), [1, 64]);
      for (let i = 0; i < 50; i++) await mlp.forward([x]);
      await mlp.dispose();
    }
    const m = await TorchModel.load(folder + '/mobilenet.pt', { threads: 2 });
    const img = Tensor.float32(new Float32Array(3 * 224 * 224).map(() => Math.random()), [1, 3, 224, 224]);
    for (let i = 0; i < 10; i++) await m.forward([img]);
    const times = [];
    for (let i = 0; i < forwards; i++) {
      const t = performance.now();
      await m.forward([img]);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(JSON.stringify({ p50: times[Math.floor(times.length / 2)] }));
    `,
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, folder, withMlp ? '1' : '0', String(forwards)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the sequence child exited with ${code}: ${err}`));
      const lines = err.split('\n');
      resolve({
        p50: (JSON.parse(out.trim().split('\n').pop() as string) as { p50: number }).p50,
        warnings: lines.filter((l) => l.startsWith('torchscript-node: LibTorch warning:')).length,
        rawWarnings: lines.filter((l) => l.startsWith('[W ')).length,
      });
    });
  });
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

    // Two models side by side: resnet18 at 1 thread each, on threads of their own (inferenceThread 'auto' with
    // 1 thread < the cores): a pair of forwards at once against one forward alone, interleaved rounds.
    // The same pair on the shared thread is the control: one forward after the other. The process's CPU time over
    // the pairs' wall time says how many cores the pair had (up to 2 side by side; under 2 on a busy machine).
    const one = await TorchModel.load(path.join(folder, 'resnet18.pt'), { threads: 1, device });
    const two = await TorchModel.load(path.join(folder, 'resnet18.pt'), { threads: 1, device });
    const sharedOne = await TorchModel.load(path.join(folder, 'resnet18.pt'), { threads: 1, device, inferenceThread: 'shared' });
    const sharedTwo = await TorchModel.load(path.join(folder, 'resnet18.pt'), { threads: 1, device, inferenceThread: 'shared' });
    const image = randomImage(1);
    process.stdout.write(`\nside by side: resnet18, 1 thread each, on ${one.info.inferenceThread}/${two.info.inferenceThread} threads: warm-up`);
    await timeAddon(one, image, 5);
    await timePairs(one, two, image, 5);
    await timePairs(sharedOne, sharedTwo, image, 5);
    const alone: number[] = [];
    const pairs: number[] = [];
    const sharedPairs: number[] = [];
    const cpuOwn = { ms: 0, wall: 0 };
    const cpuShared = { ms: 0, wall: 0 };
    const n = Math.max(10, Math.round(iters / 2));
    for (let r = 0; r < rounds; r++) {
      process.stdout.write(`, round ${r + 1}/${rounds}`);
      alone.push(...(await timeAddon(one, image, n)));
      pairs.push(...(await timePairs(one, two, image, n, cpuOwn)));
      sharedPairs.push(...(await timePairs(sharedOne, sharedTwo, image, n, cpuShared)));
    }
    await Promise.all([one, two, sharedOne, sharedTwo].map((m) => m.dispose()));
    const sideBySide = {
      alone: stats(alone),
      pair: stats(pairs),
      sharedPair: stats(sharedPairs),
      ratio: Math.round((median(pairs) / median(alone)) * 1000) / 1000,
      sharedRatio: Math.round((median(sharedPairs) / median(alone)) * 1000) / 1000,
      cores: Math.round((cpuOwn.ms / cpuOwn.wall) * 100) / 100,
      sharedCores: Math.round((cpuShared.ms / cpuShared.wall) * 100) / 100,
    };
    console.log('\n| side by side (resnet18, 1 thread each, batch 1) | n | p50 ms | p95 ms | ratio to alone (p50) | CPU time / wall |');
    console.log('|---|---|---|---|---|---|');
    console.log(`| one model's forward alone | ${sideBySide.alone.n} | ${sideBySide.alone.p50} | ${sideBySide.alone.p95} | 1 | |`);
    console.log(
      `| two models at once, own threads (wall) | ${sideBySide.pair.n} | ${sideBySide.pair.p50} | ${sideBySide.pair.p95} | ${sideBySide.ratio} (target ≤ 1.2) | ${sideBySide.cores} |`,
    );
    console.log(
      `| two models at once, shared thread (wall) | ${sideBySide.sharedPair.n} | ${sideBySide.sharedPair.p50} | ${sideBySide.sharedPair.p95} | ${sideBySide.sharedRatio} | ${sideBySide.sharedCores} |`,
    );

    // The fixed cost: a tiny MLP (64→128→10, batch 1) at 1 and 2 threads, addon against Python, interleaved.
    const fixed: Record<number, { addon: ReturnType<typeof stats>; python: ReturnType<typeof stats>; over: number }> = {};
    const small = Tensor.float32(new Float32Array(64).fill(0.5), [1, 64]);
    for (const t of [1, 2]) {
      const mlp = await TorchModel.load(path.join(folder, 'mlp.pt'), { threads: t, device });
      await timeAddon(mlp, small, 200);
      await python.time('mlp', 1, 200, t);
      const addon: number[] = [];
      const py: number[] = [];
      for (let r = 0; r < rounds; r++) {
        addon.push(...(await timeAddon(mlp, small, 500)));
        py.push(...(await python.time('mlp', 1, 500, t)));
      }
      fixed[t] = { addon: stats(addon), python: stats(py), over: Math.round((median(addon) - median(py)) * 1000) / 1000 };
      await mlp.dispose();
    }
    console.log('\n| tiny MLP, batch 1 | threads | n | p50 ms | p95 ms | p50 addon − python ms |');
    console.log('|---|---|---|---|---|---|');
    for (const [t, r] of Object.entries(fixed)) {
      console.log(`| addon | ${t} | ${r.addon.n} | ${r.addon.p50} | ${r.addon.p95} | ${r.over} (target ≤ 0.05) |`);
      console.log(`| python | ${t} | ${r.python.n} | ${r.python.p50} | ${r.python.p95} | |`);
    }

    // mobilenet_v3_small (2 threads, optimised) after another model, each in a fresh process, alternating.
    process.stdout.write('\nmobilenet_v3_small after an MLP (fresh processes): ');
    const seqAlone: number[] = [];
    const seqAfter: number[] = [];
    let warningLines = 0;
    let rawWarningLines = 0;
    const seqForwards = Math.max(30, iters);
    for (let r = 0; r < rounds; r++) {
      for (const withMlp of [false, true]) {
        const res = await sequenceChild(folder, withMlp, seqForwards);
        (withMlp ? seqAfter : seqAlone).push(res.p50);
        warningLines += res.warnings;
        rawWarningLines += res.rawWarnings;
        process.stdout.write('.');
      }
    }
    const sequence = {
      alone_p50_ms: median(seqAlone),
      after_mlp_p50_ms: median(seqAfter),
      alone_range_ms: [Math.min(...seqAlone), Math.max(...seqAlone)].map((v) => Math.round(v * 1000) / 1000),
      after_mlp_range_ms: [Math.min(...seqAfter), Math.max(...seqAfter)].map((v) => Math.round(v * 1000) / 1000),
      ratio: Math.round((median(seqAfter) / median(seqAlone)) * 1000) / 1000,
    };
    console.log(
      `\nmedian of ${rounds} processes' median forward: alone ${sequence.alone_p50_ms} ms (range ${sequence.alone_range_ms.join('–')}), ` +
        `after an MLP ${sequence.after_mlp_p50_ms} ms (range ${sequence.after_mlp_range_ms.join('–')}); ratio ${sequence.ratio} (target ≤ 1.1)`,
    );
    console.log(
      `LibTorch warning lines on stderr over ${2 * rounds} processes × ${seqForwards + 10} forwards: ${warningLines} ` +
        `(at most 1 a process: each distinct warning once), LibTorch's own [W ...] lines: ${rawWarningLines}`,
    );

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
        side_by_side_alone_p50_ms: sideBySide.alone.p50,
        side_by_side_pair_p50_ms: sideBySide.pair.p50,
        side_by_side_ratio: sideBySide.ratio,
        side_by_side_cpu_per_wall: sideBySide.cores,
        shared_pair_p50_ms: sideBySide.sharedPair.p50,
        shared_pair_ratio: sideBySide.sharedRatio,
        mlp_1t_addon_p50_ms: fixed[1].addon.p50,
        mlp_1t_addon_p95_ms: fixed[1].addon.p95,
        mlp_1t_python_p50_ms: fixed[1].python.p50,
        mlp_1t_python_p95_ms: fixed[1].python.p95,
        mlp_1t_over_python_ms: fixed[1].over,
        mlp_2t_addon_p50_ms: fixed[2].addon.p50,
        mlp_2t_addon_p95_ms: fixed[2].addon.p95,
        mlp_2t_python_p50_ms: fixed[2].python.p50,
        mlp_2t_python_p95_ms: fixed[2].python.p95,
        mlp_2t_over_python_ms: fixed[2].over,
        mobilenet_alone_p50_ms: sequence.alone_p50_ms,
        mobilenet_after_mlp_p50_ms: sequence.after_mlp_p50_ms,
        mobilenet_after_mlp_ratio: sequence.ratio,
        libtorch_warning_lines: warningLines,
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
