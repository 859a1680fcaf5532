import { checkInteger, invalid } from './validate.js';

/** The element types a tensor can have on its way in and out of a model. */
export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bool';

/** The typed array that holds each dtype's data (bool is one byte per element, 0 or 1). */
export interface DTypeArray {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

type Constructor = { new (length: number): DTypeArray[DType]; name: string };

const ARRAY_OF: { readonly [D in DType]: Constructor } = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export const DTYPES = Object.keys(ARRAY_OF) as readonly DType[];

const MAX_DIMS = 64; // LibTorch's limit

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && value in ARRAY_OF;
}

/**
 * A dense, row-major (C-contiguous) tensor in JavaScript memory: a typed array and a shape.
 *
 * Inputs are read in place by the addon, without a copy: do not change a tensor's data while a forward
 * that uses it is running. Outputs are backed by LibTorch's memory, also without a copy.
 */
export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DTypeArray[D];
  /** The key, for the outputs of a model that returns a dict. */
  readonly name: string | undefined;

  constructor(dtype: D, data: DTypeArray[D], shape: readonly number[], name?: string) {
    if (!isDType(dtype)) invalid(`one of ${DTYPES.join(', ')}`, 'dtype', dtype);
    const expected = ARRAY_OF[dtype];
    if (!(data instanceof expected)) invalid(`a ${expected.name}`, `the data of a ${dtype} tensor`, data);
    this.shape = Object.freeze(checkShape(shape));
    const size = this.shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new RangeError(`Expected ${size} elements for shape [${this.shape.join(', ')}] but the data holds ${data.length}`);
    }
    if (dtype === 'bool') {
      const bad = (data as Uint8Array).findIndex((v) => v > 1);
      if (bad >= 0) throw new RangeError(`Expected only 0 and 1 in bool data but element ${bad} is ${data[bad]}`);
    }
    this.dtype = dtype;
    this.data = data;
    this.name = name;
  }

  /** Wraps (does not copy) a Float32Array, or copies an array of numbers. `shape` defaults to `[length]`. */
  static float32(data: Float32Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'float32'> {
    return new Tensor('float32', toTypedArray(data, Float32Array, 'float32'), shape ?? [data.length]);
  }

  static float64(data: Float64Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'float64'> {
    return new Tensor('float64', toTypedArray(data, Float64Array, 'float64'), shape ?? [data.length]);
  }

  static int32(data: Int32Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'int32'> {
    return new Tensor('int32', toTypedArray(data, Int32Array, 'int32'), shape ?? [data.length]);
  }

  /** int64 data is a BigInt64Array; an array of safe integers (numbers) or bigints is converted. */
  static int64(data: BigInt64Array | ArrayLike<number | bigint>, shape?: readonly number[]): Tensor<'int64'> {
    let array: BigInt64Array;
    if (data instanceof BigInt64Array) {
      array = data;
    } else {
      checkArrayLike(data, 'int64');
      array = new BigInt64Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX) array[i] = v;
        else if (typeof v === 'number' && Number.isSafeInteger(v)) array[i] = BigInt(v);
        else if (typeof v === 'number' || typeof v === 'bigint') invalid('a safe integer or an int64 bigint', `int64 element ${i}`, v, 'range');
        else invalid('a safe integer or a bigint', `int64 element ${i}`, v);
      }
    }
    return new Tensor('int64', array, shape ?? [data.length]);
  }

  static uint8(data: Uint8Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'uint8'> {
    return new Tensor('uint8', toTypedArray(data, Uint8Array, 'uint8'), shape ?? [data.length]);
  }

  /** bool data is a Uint8Array of 0 and 1; an array of booleans is converted. */
  static bool(data: Uint8Array | ArrayLike<boolean | number>, shape?: readonly number[]): Tensor<'bool'> {
    let array: Uint8Array;
    if (data instanceof Uint8Array) {
      array = data;
    } else {
      checkArrayLike(data, 'bool');
      array = Uint8Array.from(data as ArrayLike<boolean | number>, (v, i) => {
        if (v === true || v === 1) return 1;
        if (v === false || v === 0) return 0;
        return invalid('true, false, 0 or 1', `bool element ${i}`, v, typeof v === 'number' ? 'range' : 'type');
      });
    }
    return new Tensor('bool', array, shape ?? [data.length]);
  }

  /** The number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** The elements as plain numbers (int64 beyond ±2^53 loses precision; bool gives 0 and 1). */
  toArray(): number[] {
    return Array.from(this.data as ArrayLike<number | bigint>, Number);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}])`;
  }
}

function checkShape(shape: unknown): number[] {
  if (!Array.isArray(shape)) invalid('an array of dimensions', 'shape', shape);
  if (shape.length > MAX_DIMS) invalid(`at most ${MAX_DIMS} dimensions`, 'shape', shape, 'range');
  return shape.map((d: unknown, i) => checkInteger(d, `shape[${i}]`, 0));
}

function checkArrayLike(data: unknown, dtype: DType): asserts data is ArrayLike<unknown> {
  const ok = Array.isArray(data) || (ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigInt64Array));
  if (!ok) invalid(`a ${ARRAY_OF[dtype].name} or an array of numbers`, `the data of a ${dtype} tensor`, data);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Integer dtypes: numbers outside their range would wrap around silently in a typed array. */
const INTEGER_RANGE: Partial<Record<DType, [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint8: [0, 255],
};

function toTypedArray<A extends Float32Array | Float64Array | Int32Array | Uint8Array>(
  data: ArrayLike<number>,
  Type: { new (length: number): A; from(source: ArrayLike<number>): A; name: string },
  dtype: DType,
): A {
  if (data instanceof Type) return data;
  checkArrayLike(data, dtype);
  const range = INTEGER_RANGE[dtype];
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (typeof v !== 'number') invalid('a number', `${dtype} element ${i}`, v);
    if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1])) {
      invalid(`an integer from ${range[0]} to ${range[1]}`, `${dtype} element ${i}`, v, 'range');
    }
  }
  return Type.from(data);
}
