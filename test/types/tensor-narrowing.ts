// A type-level test, checked by `tsc --noEmit` (npm run typecheck, npm run lint), never run: the Tensor type is
// a union over the dtypes, so that checking `dtype` narrows `data` to that dtype's typed array. Each expected
// error directive below marks a use the types must refuse: if narrowing stopped working, the line would
// compile, and tsc would fail on the unused directive.
import { Tensor, type TorchModel } from '../../src/index.js';
import type { OnnxModel } from '../../src/onnx/index.js';

export async function narrowing(torch: TorchModel, onnx: OnnxModel): Promise<void> {
  const [y] = await torch.forward([Tensor.float32([1, 2], [2])]);
  if (y.dtype === 'float32') {
    const f: Float32Array = y.data;
    // @ts-expect-error: a float32 tensor's data is not a BigInt64Array
    const wrong: BigInt64Array = y.data;
    void f;
    void wrong;
  }
  if (y.dtype === 'int64') {
    const big: BigInt64Array = y.data;
    void big;
  }
  if (y.dtype === 'float16') {
    const bits: Uint16Array = y.data; // the bits
    void bits;
  }
  // @ts-expect-error: not narrowed, data is any of the typed arrays
  const unknown: Float32Array = y.data;
  void unknown;

  const named = await onnx.forwardNamed({ a: Tensor.int16([1, 2]) });
  const z = named.sum;
  switch (z.dtype) {
    case 'int8':
      z.data satisfies Int8Array;
      break;
    case 'int16':
      z.data satisfies Int16Array;
      break;
    default:
      // @ts-expect-error: int16 was handled above
      z.dtype satisfies 'int16';
  }

  // A dtype known only at run time still gives the union: `new Tensor(dtype, ...)` narrows the same way.
  const dtype = Math.random() > 0.5 ? ('int8' as const) : ('bool' as const);
  const t = new Tensor(dtype, new Int8Array(1) as never, [1]);
  if (t.dtype === 'bool') t.data satisfies Uint8Array;

  // The factories give one dtype's tensor.
  Tensor.int8([1]).data satisfies Int8Array;
  // @ts-expect-error: an int8 tensor is not a float32 one
  Tensor.int8([1]) satisfies Tensor<'float32'>;
}
