// One place for argument checks, so that every message reads the same way:
// "Expected a positive integer for threads but received -1 of type number".

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  switch (typeof value) {
    case 'string':
      return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}' of type string`;
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${String(value)} of type ${typeof value}`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    default:
      return `an object of type ${(value as object).constructor?.name ?? 'Object'}`;
  }
}

/**
 * Throws a TypeError (wrong kind of value) or RangeError (right kind, wrong value), with the code
 * ERR_INVALID_ARGUMENT for programs to switch on (as Node's own argument errors have codes).
 */
export function invalid(expected: string, name: string, value: unknown, kind: 'type' | 'range' = 'type'): never {
  throw argumentError(`Expected ${expected} for ${name} but received ${describe(value)}`, kind);
}

/** A TypeError or RangeError with the code ERR_INVALID_ARGUMENT. */
export function argumentError(message: string, kind: 'type' | 'range' = 'type'): TypeError & { code: string } {
  const error = kind === 'type' ? new TypeError(message) : new RangeError(message);
  // Not enumerable, as an Error's message is not: the error reads and compares as a plain TypeError/RangeError.
  Object.defineProperty(error, 'code', { value: 'ERR_INVALID_ARGUMENT', enumerable: false, writable: true, configurable: true });
  return error as TypeError & { code: string };
}

/** One of a model's inputs, as the checks below need it. */
export interface InputSlot {
  name: string;
  /** False where the model has a default for it (TorchScript). */
  required: boolean;
}

/** What a model takes, in messages: "1 input (x)", "2 to 3 inputs (x, n, scale)". */
export function takes(slots: readonly InputSlot[]): string {
  let required = slots.length;
  while (required > 0 && !slots[required - 1].required) required--;
  const count = required === slots.length ? `${slots.length}` : `${required} to ${slots.length}`;
  return `${count} input${slots.length === 1 ? '' : 's'} (${slots.map((s) => s.name).join(', ')})`;
}

/** `inputs[1] (n)`: where a message points. */
export function inputLabel(slots: readonly InputSlot[], i: number): string {
  return slots[i] ? `inputs[${i}] (${slots[i].name})` : `inputs[${i}]`;
}

/**
 * A forward's inputs in the model's order, from an array (positional) or an object keyed by input name.
 * Throws (ERR_INVALID_ARGUMENT) for a count the model does not take, an unknown name, or a required input
 * left out: the same messages for both backends. Inputs left out by name come back as undefined (their
 * default applies).
 */
export function positionalInputs<T>(inputs: unknown, slots: readonly InputSlot[]): (T | undefined)[] {
  if (Array.isArray(inputs)) {
    let required = slots.length;
    while (required > 0 && !slots[required - 1].required) required--;
    if (inputs.length > slots.length || inputs.length < required) {
      throw argumentError(`The model takes ${takes(slots)} but received ${inputs.length}`, 'range');
    }
    return inputs as T[];
  }
  // A plain object by name; not a Tensor or a typed array passed where an array of them belongs.
  const proto = isObject(inputs) ? Object.getPrototypeOf(inputs) : undefined;
  if (!isObject(inputs) || (proto !== Object.prototype && proto !== null)) {
    invalid('an array of inputs, or an object of inputs by name', 'inputs', inputs);
  }
  const names = slots.map((s) => s.name);
  for (const key of Object.keys(inputs)) {
    if (!names.includes(key)) {
      throw argumentError(`Unknown input '${key}': the model takes ${takes(slots)}`);
    }
  }
  const out = slots.map((s) => (Object.hasOwn(inputs, s.name) ? (inputs[s.name] as T) : undefined));
  const missing = slots.filter((s, i) => s.required && out[i] === undefined).map((s) => s.name);
  if (missing.length > 0) {
    throw argumentError(`Missing input${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: the model takes ${takes(slots)}`);
  }
  while (out.length > 0 && out[out.length - 1] === undefined) out.pop();
  return out;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function checkInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') invalid(`an integer between ${min} and ${max}`, name, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    invalid(`an integer between ${min} and ${max}`, name, value, 'range');
  }
  return value;
}

/** Rejects keys the caller did not mean: a misspelt option should not be silently ignored. */
export function checkKeys(value: Record<string, unknown>, allowed: readonly string[], name: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`Unknown option '${key}' in ${name}; expected one of ${allowed.join(', ')}`);
    }
  }
}
