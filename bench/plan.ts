// `npm run bench`'s command line, read once into one plan that every phase of the run takes as an argument:
// what to measure, how long, where the tools and the results are. Nothing else of the run is configured.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_OUT = path.join(REPO, 'bench', 'results');

export const USAGE = `Usage: npm run bench [-- options]

  --quick            a few minutes: the default model, batch 1, 2 threads, Debian's LibTorch, the service at
                     concurrency 4, and the service on the full-size model at concurrency 4 (writes
                     bench/results/quick.*; a full run writes bench/results/latest.* and the figures of
                     README.md and docs/benchmark.md)
  --no-full-model    skip the full-size workshop architecture (its latency and its service)
  --no-torch2        skip the pip torch 2.x (TORCH2_PYTHON names its python; default the one of
                     npm run test:libtorch2, ~/.cache/torchscript-node/torch-2.15.0/bin/python)
  --no-service       skip the HTTP service (both studies: the default model's and the full-size model's)
  --rounds N         interleaved rounds of every latency measurement on the default model (default 4;
                     quick 1; the full model: 3 at batch 1, 2 at batch 8)
  --iters N          timed forwards a measurement on the default model (default 20; the full model: 5
                     at batch 1, 3 at batch 8). Many short rounds rather than few long ones: this
                     machine's speed drifts by minutes (a shared VM), and interleaving spreads it evenly
  --duration S       seconds of each autocannon run (default 10; quick 3)
  --out DIR          where the results go (default bench/results)
  --render           measure nothing: write latest.md, the charts and the figures of README.md and
                     docs/benchmark.md again from latest.json (after a change to the report's format)`;

/** Where the run finds its tools and inputs. */
export interface BenchPaths {
  readonly repo: string;
  /** ../shared/data (TORCH_NODE_SHARED_DATA overrides): bert-base-uncased's vocabulary, food photos. */
  readonly sharedData: string;
  readonly debianPython: string;
  /** The pip torch 2.x's python (TORCH2_PYTHON, else the one npm run test:libtorch2 installs). */
  readonly torch2Python: string;
  /** The addon and the C++ floor built against Debian's LibTorch 1.13 and against the pip torch 2.x. */
  readonly addon113: string;
  readonly addon2: string;
  readonly floor113: string;
  readonly floor2: string;
}

export interface BenchPlan {
  readonly quick: boolean;
  /** Interleaved rounds, timed forwards and warm-up forwards of a measurement on the default model. */
  readonly rounds: number;
  readonly iters: number;
  readonly warmup: number;
  readonly threadCounts: readonly number[];
  readonly batches: readonly number[];
  /** Seconds of each load run against the service, and the concurrencies it runs at. */
  readonly durationS: number;
  readonly concurrencies: readonly number[];
  readonly fullModel: boolean;
  readonly torch2: boolean;
  readonly service: boolean;
  readonly outDir: string;
  /** quick.* or latest.* */
  readonly resultsName: 'quick' | 'latest';
  /** The README whose table a full run into bench/results rewrites; undefined otherwise. */
  readonly readme: string | undefined;
  /** How the run was started, as the results record it. */
  readonly command: string;
  readonly paths: BenchPaths;
  /** When the command line was read (Date.now()): the run's clock. */
  readonly startedAt: number;
  /** Writes a step of the run to stderr, with the time since the run started. */
  readonly progress: (message: string) => void;
}

export type BenchCommand = { action: 'help' } | { action: 'render'; outDir: string; readme: string | undefined } | { action: 'measure'; plan: BenchPlan };

/** An option's value the run cannot use: its message goes out with USAGE, and the run exits with status 2. */
export class UsageError extends Error {}

function positiveInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`Expected a positive integer for --${name} but received '${value}'`);
  return n;
}

function progressSince(started: number): (message: string) => void {
  return (message) => {
    const s = Math.round((Date.now() - started) / 1000);
    process.stderr.write(`[bench ${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${message}\n`);
  };
}

/** Reads the command line (an unknown option throws parseArgs' own error; a bad number, UsageError). */
export function readCommandLine(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchCommand {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      'no-full-model': { type: 'boolean', default: false },
      'no-torch2': { type: 'boolean', default: false },
      'no-service': { type: 'boolean', default: false },
      rounds: { type: 'string' },
      iters: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string', default: DEFAULT_OUT },
      render: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help) return { action: 'help' };
  const readme = args.out === DEFAULT_OUT ? path.join(REPO, 'README.md') : undefined;
  if (args.render) return { action: 'render', outDir: args.out, readme };
  const quick = args.quick;
  const startedAt = Date.now();
  const plan: BenchPlan = {
    quick,
    rounds: positiveInteger(args.rounds, 'rounds', quick ? 1 : 4),
    iters: positiveInteger(args.iters, 'iters', 20),
    warmup: 5,
    threadCounts: quick ? [2] : [1, 2],
    batches: quick ? [1] : [1, 8],
    durationS: positiveInteger(args.duration, 'duration', quick ? 3 : 10),
    concurrencies: quick ? [4] : [1, 4, 16],
    fullModel: !args['no-full-model'],
    // A quick run measures Debian's LibTorch only.
    torch2: !quick && !args['no-torch2'],
    service: !args['no-service'],
    outDir: args.out,
    resultsName: quick ? 'quick' : 'latest',
    readme: quick ? undefined : readme,
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    paths: {
      repo: REPO,
      sharedData: path.resolve(REPO, env.TORCH_NODE_SHARED_DATA || path.join('..', 'shared', 'data')),
      debianPython: '/usr/bin/python3',
      torch2Python: env.TORCH2_PYTHON || path.join(os.homedir(), '.cache', 'torchscript-node', 'torch-2.15.0', 'bin', 'python'),
      addon113: path.join(REPO, 'build', 'cmake', 'Release', 'torch_node.node'),
      addon2: path.join(REPO, 'build', 'torch2', 'Release', 'torch_node.node'),
      floor113: path.join(REPO, 'build', 'bench', 'floor'),
      floor2: path.join(REPO, 'build', 'bench', 'floor-torch2'),
    },
    startedAt,
    progress: progressSince(startedAt),
  };
  return { action: 'measure', plan: Object.freeze(plan) };
}
