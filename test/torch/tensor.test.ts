// Tensor: the library's own checks, thrown synchronously when a tensor is made (nothing to do with LibTorch).
import { describe, expect, it } from 'vitest';

import { DTYPES, Tensor } from '../../src/index.js';

describe('DTYPES', () => {
  it('lists the nine dtypes the addon converts: every one a typed array holds', () => {
    expect(DTYPES).toEqual(['float32', 'float64', 'float16', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool']);
  });
});

describe('making tensors', () => {
  it('wraps a typed array of the right kind without copying it', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = Tensor.float32(data, [2, 3]);
    expect(t.data).toBe(data);
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(t.name).toBeUndefined();
    expect(String(t)).toBe('Tensor(float32, [2, 3])');
  });

  it('copies an array of numbers into the dtype’s typed array, shape defaulting to [length]', () => {
    expect(Tensor.float64([1.5, 2]).data).toEqual(Float64Array.of(1.5, 2));
    expect(Tensor.int32([1, -2, 3]).data).toEqual(Int32Array.of(1, -2, 3));
    expect(Tensor.uint8([0, 255]).data).toEqual(Uint8Array.of(0, 255));
    expect(Tensor.float32([1, 2, 3]).shape).toEqual([3]);
  });

  it('int64: numbers (safe integers) and bigints, into a BigInt64Array', () => {
    const t = Tensor.int64([1, -2n, 2 ** 53 - 1, -(2n ** 62n)], [2, 2]);
    expect(t.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(t.data)).toEqual([1n, -2n, 2n ** 53n - 1n, -(2n ** 62n)]);
    const wrapped = BigInt64Array.of(5n);
    expect(Tensor.int64(wrapped).data).toBe(wrapped);
    expect(Tensor.int64([7n]).toArray()).toEqual([7]);
  });

  it('bool: booleans or 0/1, into a Uint8Array', () => {
    const t = Tensor.bool([true, false, 1, 0]);
    expect(t.data).toEqual(Uint8Array.of(1, 0, 1, 0));
    expect(t.dtype).toBe('bool');
    expect(t.toArray()).toEqual([1, 0, 1, 0]);
  });

  it('freezes a copy of the shape', () => {
    const shape = [2, 2];
    const t = Tensor.float32([1, 2, 3, 4], shape);
    shape[0] = 4;
    expect(t.shape).toEqual([2, 2]);
    expect(Object.isFrozen(t.shape)).toBe(true);
  });

  it('a scalar has shape [] and one element; a zero dimension means no elements', () => {
    expect(Tensor.float32([3], []).size).toBe(1);
    expect(Tensor.float32([], [0, 4]).shape).toEqual([0, 4]);
  });
});

describe('mistakes are refused with precise TypeError/RangeError', () => {
  it('an unknown dtype', () => {
    expect(() => new Tensor('complex64' as never, new Float32Array(1) as never, [1])).toThrow(
      new TypeError("Expected one of float32, float64, float16, int8, int16, int32, int64, uint8, bool for dtype but received 'complex64' of type string"),
    );
  });

  it.each([
    ['float32', new Float64Array(3), 'Float32Array', 'a Float64Array'],
    ['float64', new Float32Array(3), 'Float64Array', 'a Float32Array'],
    ['int32', new Uint32Array(3), 'Int32Array', 'a Uint32Array'],
    ['int64', new Int32Array(3), 'BigInt64Array', 'a Int32Array'],
    ['uint8', new Int8Array(3), 'Uint8Array', 'a Int8Array'],
    ['bool', [1, 0, 1], 'Uint8Array', 'an array of length 3'],
  ] as const)('%s data in the wrong typed array', (dtype, data, wanted, received) => {
    expect(() => new Tensor(dtype, data as never, [3])).toThrow(
      new TypeError(`Expected a ${wanted} for the data of a ${dtype} tensor but received ${received}`),
    );
  });

  it('data length not matching the shape', () => {
    expect(() => Tensor.float32([1, 2, 3, 4, 5], [2, 3])).toThrow(new RangeError('Expected 6 elements for shape [2, 3] but the data holds 5'));
    expect(() => Tensor.int64([1n, 2n], [])).toThrow(new RangeError('Expected 1 elements for shape [] but the data holds 2'));
  });

  it.each([
    [[-1, 3], RangeError, 'Expected an integer between 0 and 9007199254740991 for shape[0] but received -1 of type number'],
    [[2, 1.5], RangeError, 'Expected an integer between 0 and 9007199254740991 for shape[1] but received 1.5 of type number'],
    [[NaN], RangeError, 'Expected an integer between 0 and 9007199254740991 for shape[0] but received NaN of type number'],
    [['3'], TypeError, "Expected an integer between 0 and 9007199254740991 for shape[0] but received '3' of type string"],
  ] as const)('shape %j', (shape, ErrorClass, message) => {
    expect(() => Tensor.float32([1, 2, 3], shape as never)).toThrow(new ErrorClass(message));
  });

  it('a shape that is not an array, or has more than 64 dimensions', () => {
    expect(() => Tensor.float32([1, 2, 3], 3 as never)).toThrow(new TypeError('Expected an array of dimensions for shape but received 3 of type number'));
    expect(() => Tensor.float32([1], new Array(65).fill(1))).toThrow(
      new RangeError('Expected at most 64 dimensions for shape but received an array of length 65'),
    );
  });

  it('bool data with values above 1', () => {
    expect(() => Tensor.bool(Uint8Array.of(0, 1, 2))).toThrow(new RangeError('Expected only 0 and 1 in bool data but element 2 is 2'));
    expect(() => new Tensor('bool', Uint8Array.of(255), [1])).toThrow(new RangeError('Expected only 0 and 1 in bool data but element 0 is 255'));
    expect(() => Tensor.bool([true, 2])).toThrow(new RangeError('Expected true, false, 0 or 1 for bool element 1 but received 2 of type number'));
  });

  it('integers outside their dtype, which a typed array would wrap around silently', () => {
    expect(() => Tensor.uint8([0, 256])).toThrow(new RangeError('Expected an integer from 0 to 255 for uint8 element 1 but received 256 of type number'));
    expect(() => Tensor.uint8([-1])).toThrow(RangeError);
    expect(() => Tensor.uint8([1.5])).toThrow(RangeError);
    expect(() => Tensor.int32([2 ** 31])).toThrow(
      new RangeError('Expected an integer from -2147483648 to 2147483647 for int32 element 0 but received 2147483648 of type number'),
    );
    expect(() => Tensor.int64([2n ** 63n])).toThrow(RangeError);
    expect(() => Tensor.int64([-(2n ** 63n) - 1n])).toThrow(RangeError);
    expect(Tensor.int64([2n ** 63n - 1n, -(2n ** 63n)]).data).toEqual(BigInt64Array.of(2n ** 63n - 1n, -(2n ** 63n)));
    expect(Tensor.uint8([0, 255]).toArray()).toEqual([0, 255]);
  });

  it('int64 elements that are not safe integers or bigints', () => {
    expect(() => Tensor.int64([1, 1.5])).toThrow(
      new RangeError('Expected a safe integer or an int64 bigint for int64 element 1 but received 1.5 of type number'),
    );
    expect(() => Tensor.int64([2 ** 53])).toThrow(RangeError);
    expect(() => Tensor.int64(['1'] as never)).toThrow(
      new TypeError("Expected a safe integer or a bigint for int64 element 0 but received '1' of type string"),
    );
    expect(() => Tensor.int64(new Float64Array(2) as never)).not.toThrow(); // numbers 0, 0
    expect(() => Tensor.int64('12' as never)).toThrow(TypeError);
  });

  it('elements that are not numbers, and data that is not array-like', () => {
    expect(() => Tensor.float32([1, 'a'] as never)).toThrow(new TypeError("Expected a number for float32 element 1 but received 'a' of type string"));
    expect(() => Tensor.float32('abc' as never)).toThrow(
      new TypeError("Expected a Float32Array or an array of numbers for the data of a float32 tensor but received 'abc' of type string"),
    );
    expect(() => Tensor.uint8(new DataView(new ArrayBuffer(2)) as never)).toThrow(TypeError);
  });
});
