import { argRangeError, argTypeError } from './errors';

/** Options every collective accepts. */
export interface CallOptions {
  /** This call's timeout; defaults to the communicator's. */
  timeoutMs?: number;
}

export const MAX_TIMEOUT_MS = 30 * 24 * 3600 * 1000;

export function checkTimeout(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw argTypeError(name, 'an integer number of milliseconds', v);
  if (v < 1 || v > MAX_TIMEOUT_MS) throw argRangeError(name, `1 to ${MAX_TIMEOUT_MS} milliseconds`, v);
  return v;
}

export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw argTypeError(name, 'an integer', v);
  if (v < min || v > max) throw argRangeError(name, `an integer from ${min} to ${max}`, v);
  return v;
}

export function checkOptions<T extends object>(name: string, v: unknown, allowed: readonly string[]): T {
  if (v === undefined) return {} as T;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw argTypeError(name, 'an options object', v);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) throw argTypeError(`${name}.${key}`, `one of the options ${allowed.join(', ')}`, key);
  }
  return v as T;
}
