// The dtypes beyond the first six: float16 (its bits in a Uint16Array), int8 and int16, in and out of a
// TorchScript model (test/fixtures/make_models.py: SmallDTypes), and the float16 conversions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fromFloat16Bits, Tensor, toFloat16Bits, TorchModel } from '../../src/index.js';
import { reachPath } from '../helpers/reach.js';

let model: TorchModel;

beforeAll(async () => {
  model = await TorchModel.load(reachPath('small_dtypes'), { device: 'cpu', threads: 1 });
});

afterAll(async () => {
  await model?.dispose();
});

describe('float16, int8 and int16 through LibTorch', () => {
  it('go in and come out in their own dtypes (float16 is no longer widened to float32)', async () => {
    const [h, i8, i16] = await model.forward([
      Tensor.float16([1, 2.5, -3, 0.1], [2, 2]),
      Tensor.int8([1, -2, 126, -128], [2, 2]),
      Tensor.int16([1, -2, 10000, (-32768 / 3) | 0], [2, 2]),
    ]);
    expect(h.dtype).toBe('float16');
    expect(h.data).toBeInstanceOf(Uint16Array);
    expect(h.shape).toEqual([2, 2]);
    // 0.1 is 0.0999755859375 in half precision; doubled exactly
    expect(h.toArray()).toEqual([2, 5, -6, 2 * fromFloat16Bits(toFloat16Bits([0.1]))[0]]);
    expect(i8.dtype).toBe('int8');
    expect(i8.data).toBeInstanceOf(Int8Array);
    expect(i8.toArray()).toEqual([2, -1, 127, -127]);
    expect(i16.dtype).toBe('int16');
    expect(i16.data).toBeInstanceOf(Int16Array);
    expect(i16.toArray()).toEqual([3, -6, 30000, ((-32768 / 3) | 0) * 3]);
  });

  it('float16 bits wrapped as they are (a Uint16Array is the bits, not the values)', async () => {
    const bits = Uint16Array.of(0x3c00, 0xc000); // 1, -2
    const [h] = await model.forward([Tensor.float16(bits), Tensor.int8([0, 0]), Tensor.int16([0, 0])]);
    expect(Array.from(h.data as Uint16Array)).toEqual([0x4000, 0xc400]); // 2, -4
  });

  it('integers outside int8 and int16 are refused, not wrapped', () => {
    expect(() => Tensor.int8([127, 128])).toThrow(new RangeError('Expected an integer from -128 to 127 for int8 element 1 but received 128 of type number'));
    expect(() => Tensor.int16([-32769])).toThrow(RangeError);
    expect(() => new Tensor('int16', new Uint16Array(1) as never, [1])).toThrow(
      new TypeError('Expected a Int16Array for the data of a int16 tensor but received a Uint16Array'),
    );
  });
});

describe('float16 conversions', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // the largest half
    [65520, 0x7c00], // rounds up to Inf
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // the smallest subnormal
    [2 ** -25, 0x0000], // a tie: to even, 0
    [3 * 2 ** -25, 0x0002], // a tie: to even, 2
    [2 ** -14, 0x0400], // the smallest normal
    [1 + 2 ** -11, 0x3c00], // a tie: to even
    [1 + 3 * 2 ** -11, 0x3c02], // a tie: to even, up
    [0, 0x0000],
    [-0, 0x8000],
  ])('%d is 0x%s in half precision', (value, bits) => {
    expect(toFloat16Bits([value])[0].toString(16)).toBe(bits.toString(16));
  });

  it('NaN stays NaN; every half value survives a round trip', () => {
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits([Number.NaN]))[0])).toBe(true);
    const all = Uint16Array.from({ length: 0x10000 }, (_, i) => i).filter((b) => (b & 0x7c00) !== 0x7c00 || (b & 0x3ff) === 0);
    expect(Array.from(toFloat16Bits(fromFloat16Bits(all)))).toEqual(Array.from(all));
  });

  it('Tensor.float16 of numbers converts them; toArray() gives the values back', () => {
    const t = Tensor.float16([1, -2, 0.5]);
    expect(Array.from(t.data)).toEqual([0x3c00, 0xc000, 0x3800]);
    expect(t.toArray()).toEqual([1, -2, 0.5]);
    expect(() => Tensor.float16(['1'] as never)).toThrow(new TypeError("Expected a number for float16 element 0 but received '1' of type string"));
  });
});
