import { checkInteger, invalid } from './validate.js';

/**
 * The element types a tensor can have on its way in and out of a model: every type a JavaScript typed array
 * holds. float16 is held as its bits, in a Uint16Array (Node 20 has no Float16Array; `toFloat16Bits` and
 * `fromFloat16Bits` convert), bool as one byte per element, 0 or 1.
 */
export type DType = 'float32' | 'float64' | 'float16' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'bool';

/** The typed array that holds each dtype's data. */
export interface DTypeArray {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

type Constructor = { new (length: number): DTypeArray[DType]; name: string };

const ARRAY_OF: { readonly [D in DType]: Constructor } = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export const DTYPES = Object.keys(ARRAY_OF) as readonly DType[];

const MAX_DIMS = 64; // LibTorch's limit

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(ARRAY_OF, value);
}

/** A dtype's typed array over `buffer`'s bytes (not copied): raw data read from a file, for instance. */
export function arrayOver<D extends DType>(dtype: D, buffer: ArrayBuffer): DTypeArray[D] {
  return new (ARRAY_OF[dtype] as unknown as new (buffer: ArrayBuffer) => DTypeArray[D])(buffer);
}

/** The name of the typed array that holds a dtype's data: `Float32Array`, `Uint16Array` (float16), ... */
export function arrayName(dtype: DType): string {
  return ARRAY_OF[dtype].name;
}

/**
 * A dense, row-major (C-contiguous) tensor in JavaScript memory: a typed array and a shape.
 *
 * The constructor and the factories wrap a typed array without copying it. A forward copies its inputs'
 * data as it is called (TorchModel in the addon, OnnxModel into its worker), so the caller may change or
 * reuse the arrays as soon as forward() has returned. Outputs are backed by the backend's memory, not copied.
 *
 * The type `Tensor` is a union over the dtypes, so that checking `dtype` narrows `data`:
 * `if (y.dtype === 'float32') y.data` is a Float32Array. `Tensor<'int64'>` is one dtype's.
 */
class TypedTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DTypeArray[D];
  /** The output's name: ONNX Runtime's output name, or TorchScript's dict key (other outputs have none). */
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
    return new TypedTensor('float32', toTypedArray(data, Float32Array, 'float32'), shape ?? [data.length]);
  }

  static float64(data: Float64Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'float64'> {
    return new TypedTensor('float64', toTypedArray(data, Float64Array, 'float64'), shape ?? [data.length]);
  }

  /**
   * float16 data is a Uint16Array of the values' IEEE 754 half-precision bits (wrapped as it is); an array of
   * numbers is converted, rounding to the nearest half.
   */
  static float16(data: Uint16Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'float16'> {
    let bits: Uint16Array;
    if (data instanceof Uint16Array) {
      bits = data;
    } else {
      checkArrayLike(data, 'float16');
      for (let i = 0; i < data.length; i++) if (typeof data[i] !== 'number') invalid('a number', `float16 element ${i}`, data[i]);
      bits = toFloat16Bits(data);
    }
    return new TypedTensor('float16', bits, shape ?? [data.length]);
  }

  static int8(data: Int8Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'int8'> {
    return new TypedTensor('int8', toTypedArray(data, Int8Array, 'int8'), shape ?? [data.length]);
  }

  static int16(data: Int16Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'int16'> {
    return new TypedTensor('int16', toTypedArray(data, Int16Array, 'int16'), shape ?? [data.length]);
  }

  static int32(data: Int32Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'int32'> {
    return new TypedTensor('int32', toTypedArray(data, Int32Array, 'int32'), shape ?? [data.length]);
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
    return new TypedTensor('int64', array, shape ?? [data.length]);
  }

  static uint8(data: Uint8Array | ArrayLike<number>, shape?: readonly number[]): Tensor<'uint8'> {
    return new TypedTensor('uint8', toTypedArray(data, Uint8Array, 'uint8'), shape ?? [data.length]);
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
    return new TypedTensor('bool', array, shape ?? [data.length]);
  }

  /** The number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** The elements as plain numbers (int64 beyond ±2^53 loses precision; bool gives 0 and 1; float16 its values). */
  toArray(): number[] {
    if (this.dtype === 'float16') return Array.from(fromFloat16Bits(this.data as Uint16Array));
    return Array.from(this.data as ArrayLike<number | bigint>, Number);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}])`;
  }
}

// Named Tensor in messages and stack traces (describe() prints an object's constructor's name).
Object.defineProperty(TypedTensor, 'name', { value: 'Tensor' });

/** A tensor of one of the dtypes: a union, so that `dtype` narrows `data` (see the class above). */
export type Tensor<D extends DType = DType> = D extends DType ? TypedTensor<D> : never;

/**
 * The class's statics, and a constructor whose result is the union for a dtype not known statically:
 * `new Tensor(spec.dtype, data, shape)` is a Tensor whose `dtype` narrows, not a TypedTensor<DType>.
 */
type TensorConstructor = Omit<typeof TypedTensor, 'prototype'> & {
  new <D extends DType>(dtype: D, data: DTypeArray[D], shape: readonly number[], name?: string): Tensor<D>;
  readonly prototype: Tensor;
};
export const Tensor = TypedTensor as unknown as TensorConstructor;

/** Numbers as IEEE 754 half-precision bits, rounded to the nearest (ties to even), as a float16 tensor holds them. */
export function toFloat16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); // Inf, NaN
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00; // too large: Inf
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // too small: ±0
        continue;
      }
      mant |= 0x800000; // subnormal: the implicit bit shifted in
      const shift = 14 - e;
      let half = mant >>> shift;
      const rest = mant & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rest > halfway || (rest === halfway && half & 1)) half++;
      out[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      // A carry out of the mantissa raises the exponent, as it should (up to 0x7c00, Inf).
      if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

/** The values of IEEE 754 half-precision bits (a float16 tensor's data). */
export function fromFloat16Bits(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
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
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint8: [0, 255],
};

function toTypedArray<A extends Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array>(
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
