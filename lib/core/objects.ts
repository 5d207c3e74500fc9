import { argTypeError } from './errors';

/**
 * The values broadcastObject and allGatherObject carry: what JSON round-trips unchanged.
 * Anything JSON.stringify would drop or change silently (undefined, functions, symbols,
 * bigint, NaN and ±Infinity, class instances such as Date or Map, typed arrays, cycles) is
 * refused instead, so that every rank gets exactly the value the sender had.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const EXPECTED = 'a JSON-serialisable value (null, a boolean, a finite number, a string, or arrays and plain objects of them)';

/** Throws a TypeError naming `name` and the path of the first value that is not plain JSON. */
export function checkJson(name: string, value: unknown): void {
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw argTypeError(path, EXPECTED, v);
      return;
    }
    if (typeof v !== 'object') throw argTypeError(path, EXPECTED, typeof v === 'function' ? 'a function' : v);
    if (seen.has(v)) throw argTypeError(path, `${EXPECTED}, without cycles`, 'a cycle');
    const proto = Object.getPrototypeOf(v) as unknown;
    if (Array.isArray(v)) {
      seen.add(v);
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) throw argTypeError(`${path}[${i}]`, EXPECTED, 'a hole in the array');
        walk(v[i], `${path}[${i}]`);
      }
    } else if (proto === Object.prototype || proto === null) {
      seen.add(v);
      for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
      if (Object.getOwnPropertySymbols(v).length > 0) throw argTypeError(path, `${EXPECTED}, without symbol keys`, 'an object with symbol keys');
    } else {
      throw argTypeError(path, EXPECTED, `an instance of ${(v as { constructor?: { name?: string } }).constructor?.name ?? 'a class'}`);
    }
    seen.delete(v);
  };
  walk(value, name);
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function decodeJson(bytes: Uint8Array): JsonValue {
  return JSON.parse(new TextDecoder().decode(bytes)) as JsonValue;
}
