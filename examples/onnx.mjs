// Run an ONNX model from Node: `node examples/onnx.mjs [model.onnx]` (without one: the demo model's head).
// The torchscript-node/onnx entry needs onnxruntime-node installed beside the library.
import { OnnxModel, Tensor } from 'torchscript-node/onnx';

const file = process.argv[2] ?? 'models/head.onnx';
const model = await OnnxModel.load(file, { threads: 2 }); // its session runs in a worker thread
console.log(model.inputs.map((i) => `${i.name}: ${i.dtype} [${i.shape}]`)); // a named dimension is a string

// Zeros for each of the graph's inputs (float32 ones here), a named dimension such as batch taken as 1.
const inputs = {};
for (const { name, dtype, shape } of model.inputs) {
  if (dtype !== 'float32') throw new Error(`This example makes float32 inputs only; ${name} is ${dtype}`);
  const dims = shape.map((d) => (typeof d === 'number' ? d : 1));
  inputs[name] = Tensor.float32(new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
}
const outputs = await model.forwardNamed(inputs); // by name; forward() takes and gives them in order
for (const [name, tensor] of Object.entries(outputs)) console.log(name, tensor.dtype, tensor.shape);

await model.dispose();
