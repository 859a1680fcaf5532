// Run a TorchScript model from Node: `node examples/library.mjs [model.pt]`.
// Without an argument it first saves a small one with Python's torch (Debian's python3-torch).
import { execFileSync } from 'node:child_process';
import { Tensor, TorchModel, runtimeInfo } from 'torchscript-node';

let file = process.argv[2];
if (!file) {
  file = '/tmp/linear.pt';
  execFileSync('/usr/bin/python3', [
    '-c',
    `import torch; torch.manual_seed(0); torch.jit.save(torch.jit.trace(torch.nn.Linear(4, 2).eval(), torch.randn(1, 4)), '${file}')`,
  ]);
}

console.log(runtimeInfo()); // LibTorch version, CUDA, addon in use
const model = await TorchModel.load(file, { device: 'auto', threads: 2 });
console.log(model.info.forwardSchema); // forward(..., Tensor x) -> Tensor

const input = Tensor.float32([1, 2, 3, 4], [1, 4]);
const [output] = await model.forward([input]); // runs on the addon's inference thread
console.log(output.dtype, output.shape, output.data);

await model.dispose(); // frees it once calls in flight are done
