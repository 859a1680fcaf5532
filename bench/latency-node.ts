// One latency measurement from Node, for `npm run bench` (bench/run.ts spawns it; one process per measurement,
// as the C++ floor and the Python runner): a model on an inputs folder (spec.json + raw .bin files), warm-up,
// timed forwards one after another, then the event loop's delay while more run. Prints one JSON line.
//
//   node --import tsx bench/latency-node.ts --backend torch|onnx|onnx-main --model FILE --inputs DIR
//        [--threads 2] [--warmup 5] [--iters 30] [--no-optimize]
// --backend torch uses the addon build that TORCH_NODE_ADDON names (else the default one).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { Tensor, TorchModel, runtimeInfo, type DType } from '../src/index.js';
import { OnnxModel } from '../src/onnx/index.js';
import { arrayOver } from '../src/torch/tensor.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'torch' },
    model: { type: 'string' },
    inputs: { type: 'string' },
    threads: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '5' },
    iters: { type: 'string', default: '30' },
    'no-optimize': { type: 'boolean', default: false },
  },
});
if (!args.model || !args.inputs) {
  console.error('Usage: latency-node.ts --backend torch|onnx|onnx-main --model FILE --inputs DIR [--threads N] [--warmup N] [--iters N] [--no-optimize]');
  process.exit(2);
}

interface InputSpec {
  name: string;
  dtype: DType;
  shape: number[];
  file: string;
}

function readInputs(dir: string): Tensor[] {
  const spec = JSON.parse(readFileSync(path.join(dir, 'spec.json'), 'utf8')) as { inputs: InputSpec[] };
  return spec.inputs.map((s) => {
    const bytes = readFileSync(path.join(dir, s.file));
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    return new Tensor(s.dtype, arrayOver(s.dtype, buffer) as never, s.shape);
  });
}

const threads = Number(args.threads);
const inputs = readInputs(args.inputs);
const backend = args.backend;
let model: { forward(inputs: readonly Tensor[]): Promise<Tensor[]>; dispose(): Promise<void> };
let version: Record<string, string>;
if (backend === 'torch') {
  const torch = await TorchModel.load(args.model, { device: 'cpu', threads, optimize: !args['no-optimize'] });
  model = torch;
  const { libtorchVersion, blas } = runtimeInfo();
  version = { libtorch: libtorchVersion, ...(blas.kernel ? { blas: `${blas.library} ${blas.kernel}, ${blas.source}` } : {}) };
} else if (backend === 'onnx' || backend === 'onnx-main') {
  const onnx = await OnnxModel.load(args.model, { threads, thread: backend === 'onnx' ? 'worker' : 'main' });
  model = onnx;
  version = { onnxruntime: onnx.info.onnxruntimeVersion };
} else {
  console.error(`Unknown --backend ${backend}: torch, onnx or onnx-main`);
  process.exit(2);
}

let output: Tensor | undefined;
for (let i = 0; i < Number(args.warmup); i++) [output] = await model.forward(inputs);

// Timed forwards first, with nothing else on the event loop, as the C++ floor and Python run theirs.
const times: number[] = [];
for (let i = 0; i < Number(args.iters); i++) {
  const start = performance.now();
  [output] = await model.forward(inputs);
  times.push(performance.now() - start);
}

// Then the event loop's delay while forwards run, in a pass of its own: the monitor's 1 ms timer wakes the
// main thread a thousand times a second, which on a 2-core machine takes time from the compute threads and
// would slow the timed forwards above. With the work off the JS thread the delay stays at the monitor's
// resolution (1-2 ms); with ONNX Runtime on the main thread it is a forward's time.
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
// At least 2 forwards, then more while under 2 s (a full-size batch-8 forward takes seconds).
const delayPass = performance.now();
for (let i = 0; i < 2 || (i < Number(args.iters) && performance.now() - delayPass < 2000); i++) {
  [output] = await model.forward(inputs);
  // A turn of the loop between forwards, as a server has: the monitor's timer gets its chance.
  await new Promise((resolve) => setImmediate(resolve));
}
delay.disable();
await model.dispose();

const values = Array.from(output!.data as ArrayLike<number | bigint>, Number);
console.log(
  JSON.stringify({
    runner: backend === 'torch' ? 'addon' : backend,
    ...version,
    threads,
    optimized: backend === 'torch' ? !args['no-optimize'] : true,
    warmup: Number(args.warmup),
    times_ms: times,
    eventloop_delay_ms: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
    output_sum: values.reduce((a, b) => a + b, 0),
    output_first: values.slice(0, 8),
  }),
);
