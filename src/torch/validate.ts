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

/** Throws a TypeError (wrong kind of value) or RangeError (right kind, wrong value). */
export function invalid(expected: string, name: string, value: unknown, kind: 'type' | 'range' = 'type'): never {
  const message = `Expected ${expected} for ${name} but received ${describe(value)}`;
  throw kind === 'type' ? new TypeError(message) : new RangeError(message);
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
