// A TorchModel's inputs checked against its forward's TorchScript schema, before anything is queued: the
// count (defaults allowed for), and the kind of every argument (a Tensor where the schema says Tensor; an int,
// float, bool, str, a list of them or None where it says so). The addon checks the same again in C++
// (native/forward_args.cc), for whatever reaches it.
//
// The schema says `Tensor` without a dtype, so a tensor's dtype cannot be checked before the forward runs: a
// model may take float64 and convert it itself. When LibTorch then fails on a dtype (`expected scalar type
// Double but found Float`, which names no input), explainDtypeError names the inputs whose dtype is not the
// weights', from the dtypes the addon read off the model's parameters at load.
import type { InputValue, ValueInfo } from '../model.js';
import { TorchError } from './errors.js';
import { Tensor, type DType } from './tensor.js';
import { argumentError, inputLabel, invalid, type InputSlot, positionalInputs } from './validate.js';

/** One of forward's arguments, as the addon describes it (native/forward_args.cc: DescribeArguments). */
export interface NativeArgument {
  name: string;
  /** TorchScript's annotation: `Tensor`, `int`, `Optional[Tensor]`, `List[int]`, ... */
  type: string;
  /** As TorchScript prints it, where the argument has a default. */
  default?: string;
}

export function slotsOf(args: readonly NativeArgument[]): InputSlot[] {
  return args.map((a) => ({ name: a.name, required: a.default === undefined }));
}

export function inputInfos(args: readonly NativeArgument[]): ValueInfo[] {
  return args.map((a) => ({ name: a.name, type: a.type, dtype: null, shape: null, optional: a.default !== undefined }));
}

/**
 * The inputs (an array, or an object by name) in forward's order, checked against its arguments and the budget
 * of list elements (MAX_LIST_ELEMENTS); throws TypeError/RangeError (ERR_INVALID_ARGUMENT) naming the input.
 */
export function forwardArgs(inputs: unknown, args: readonly NativeArgument[]): InputValue[] {
  const slots = slotsOf(args);
  const values = positionalInputs<InputValue>(inputs, slots);
  const budget = new ListBudget();
  values.forEach((value, i) => {
    const where = inputLabel(slots, i);
    if (value === undefined) {
      if (slots[i].required) invalid(`${article(args[i].type)} ${args[i].type}`, where, value);
      return;
    }
    checkValue(args[i].type, value, where, budget);
  });
  return values;
}

/**
 * The most list elements one forward takes, counted over every list of every argument, at every level (a
 * List[List[int]] counts its inner lists' elements too; an inner array passed many times counts each time). The
 * addon holds to the same count (native/tensor_types.h: kMaxListElements) before it copies anything: it copies
 * every element (136 bytes each), and lists that share one inner array could otherwise add up to more elements
 * than memory holds (2^20 times 2^20), or than this check could visit. A Tensor takes large data.
 */
export const MAX_LIST_ELEMENTS = 2 ** 20;

/** Counts the list elements of one forward's arguments against MAX_LIST_ELEMENTS, as they are checked. */
export class ListBudget {
  #used = 0;

  /** Counts a list of `length` at `where`; throws RangeError (ERR_INVALID_ARGUMENT) past the budget. */
  take(length: number, where: string): void {
    if (length > MAX_LIST_ELEMENTS - this.#used) {
      throw argumentError(
        `Expected at most ${MAX_LIST_ELEMENTS} list elements (the lists of all inputs together, at every level) for ${where} but received at least ${this.#used + length}: pass large data as a Tensor`,
        'range',
      );
    }
    this.#used += length;
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function article(type: string): string {
  return /^[aeiou]/i.test(type) ? 'an' : 'a';
}

function checkValue(type: string, value: unknown, where: string, budget: ListBudget): void {
  const optional = /^Optional\[(.*)\]$/.exec(type);
  if (optional) {
    if (value !== null) checkValue(optional[1], value, where, budget);
    return;
  }
  const list = /^List\[(.*)\]$/.exec(type);
  if (list) {
    if (!Array.isArray(value)) invalid(`a ${type} (an array)`, where, value);
    budget.take(value.length, where); // before the elements: a huge or much-shared array is refused at once
    value.forEach((v, i) => {
      checkValue(list[1], v, `${where}[${i}]`, budget);
    });
    return;
  }
  switch (type) {
    case 'Tensor':
      if (!(value instanceof Tensor)) invalid('a Tensor (Tensor.float32(data, shape), ...)', where, value);
      return;
    case 'int':
      if (typeof value === 'bigint') {
        if (value < INT64_MIN || value > INT64_MAX) invalid('an int (within int64)', where, value, 'range');
        return;
      }
      if (typeof value !== 'number') invalid('an int (a number or a bigint)', where, value);
      if (!Number.isSafeInteger(value)) invalid('an int (a safe integer, or a bigint)', where, value, 'range');
      return;
    case 'float':
      if (typeof value !== 'number' && typeof value !== 'bigint') invalid('a float (a number)', where, value);
      return;
    case 'number': // TorchScript's Scalar
    case 'Scalar':
      if (typeof value !== 'number' && typeof value !== 'bigint' && typeof value !== 'boolean') invalid('a number', where, value);
      return;
    case 'bool':
      if (typeof value !== 'boolean') invalid('a bool (true or false)', where, value);
      return;
    case 'str':
      if (typeof value !== 'string') invalid('a str (a string)', where, value);
      return;
    default:
      throw argumentError(
        `${where} has the type ${type}, which cannot be passed from JavaScript (Tensor, int, float, bool, str, lists of them and Optional can)`,
      );
  }
}

/** LibTorch's names of scalar types, as in `expected scalar type Double but found Float`. */
const SCALAR_TYPES: Readonly<Record<string, DType>> = {
  Float: 'float32',
  Double: 'float64',
  Half: 'float16',
  Char: 'int8',
  Short: 'int16',
  Int: 'int32',
  Long: 'int64',
  Byte: 'uint8',
  Bool: 'bool',
};

const FLOATING: readonly string[] = ['float16', 'float32', 'float64', 'BFloat16'];

/**
 * A forward that failed on a dtype, explained: `inputs[0] (x) is float64, but the model's weights are float32:
 * pass float32 tensors (LibTorch: expected scalar type Double but found Float)`. Other errors are returned as
 * they are; so is a dtype error where no input stands out (LibTorch's own message is then all there is).
 */
export function explainDtypeError(err: unknown, values: readonly InputValue[], args: readonly NativeArgument[], weightDtypes: readonly string[]): unknown {
  if (!(err instanceof TorchError) || err.code !== 'ERR_FORWARD') return err;
  const weights = weightDtypes.filter((d) => FLOATING.includes(d));
  if (weights.length === 0) return err;
  const scalar = /expected scalar type (\w+) but found (\w+)/.exec(err.message);
  const named = scalar ? [SCALAR_TYPES[scalar[1]], SCALAR_TYPES[scalar[2]]] : [];
  if (!scalar && !/expects float|scalar type|dtype/i.test(err.message)) return err;
  const slots = slotsOf(args);
  const suspects = values.flatMap((v, i) =>
    v instanceof Tensor && !weights.includes(v.dtype) && (named.includes(v.dtype) || (!scalar && FLOATING.includes(v.dtype)))
      ? [`${inputLabel(slots, i)} is ${v.dtype}`]
      : [],
  );
  if (suspects.length === 0) return err;
  const are = weights.length === 1 ? `are ${weights[0]}` : `are ${weights.join(' and ')}`;
  return new TorchError(`${suspects.join(', ')}, but the model's weights ${are}: pass ${weights[0]} tensors (LibTorch: ${err.message})`, err.code, err.details);
}
