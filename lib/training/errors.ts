/**
 * Errors of the training layer. It follows the package's one rule (docs/errors.md): a bad
 * argument is a TypeError or RangeError with code INVALID_ARGUMENT and the message
 * `<name>: expected …, got …`; anything else is an error with a stable code. Collectives that
 * fail underneath keep their CollectiveError (TIMEOUT, PEER_LOST, …) untouched.
 *
 * The core's helpers for this are internal (the training layer uses only the public entries),
 * so the few lines that build these errors live here too.
 */

/** Stable codes of failures that are the training layer's own. */
export const TrainingErrorCode = {
  /** A checkpoint file that is missing, truncated, corrupted or does not fit the model. */
  CHECKPOINT_INVALID: 'CHECKPOINT_INVALID',
  /** A data set that is not installed or whose files are not what they should be. */
  DATA_UNAVAILABLE: 'DATA_UNAVAILABLE',
  /** The ranks do not hold the same parameter layout (names, shapes, order). */
  LAYOUT_MISMATCH: 'LAYOUT_MISMATCH',
  /** synchronize() found gradients that were never marked ready. */
  GRADIENT_NOT_READY: 'GRADIENT_NOT_READY',
  /** A call that the object's current state does not allow (e.g. a step during synchronize()). */
  INVALID_STATE: 'INVALID_STATE',
  /** State that every rank must hold bit for bit (DiLoCo's θ_global) differs between ranks. */
  STATE_MISMATCH: 'STATE_MISMATCH',
  /** Fewer live workers than an elastic job's minWorkers. */
  QUORUM_LOST: 'QUORUM_LOST',
  /** Elastic training cannot run here (no store that outlives the workers), or a worker was not admitted in time. */
  ELASTIC_UNAVAILABLE: 'ELASTIC_UNAVAILABLE',
  /** The elastic job ended (its last generation closed) before this worker was admitted: nothing left to do. */
  JOB_FINISHED: 'JOB_FINISHED',
} as const;
export type TrainingErrorCode = (typeof TrainingErrorCode)[keyof typeof TrainingErrorCode];

/** A failure of the training layer that is not a bad argument. */
export class TrainingError extends Error {
  readonly code: TrainingErrorCode;
  constructor(code: TrainingErrorCode, message: string) {
    super(message);
    this.name = 'TrainingError';
    this.code = code;
  }
}

/** A TypeError for a bad argument, with code INVALID_ARGUMENT. */
export function argTypeError(name: string, expected: string, got: unknown): TypeError {
  const e = new TypeError(`${name}: expected ${expected}, got ${describe(got)}`);
  (e as TypeError & { code: string }).code = 'INVALID_ARGUMENT';
  return e;
}

/** A RangeError for an argument of the right type but a wrong value. */
export function argRangeError(name: string, expected: string, got: unknown): RangeError {
  const e = new RangeError(`${name}: expected ${expected}, got ${describe(got)}`);
  (e as RangeError & { code: string }).code = 'INVALID_ARGUMENT';
  return e;
}

/** Refuses keys that are not in `allowed` (DeepSpeed's config check), naming the first one. */
export function checkKeys<T extends object>(name: string, v: unknown, allowed: readonly string[]): T {
  if (v === undefined) return {} as T;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw argTypeError(name, 'an options object', v);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) throw argTypeError(`${name}.${key}`, `one of the options ${allowed.join(', ')}`, key);
  }
  return v as T;
}

/** A number in [min, max] (integers only when `integer`). */
export function checkNumber(name: string, v: unknown, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || Number.isNaN(v) || (integer && !Number.isInteger(v))) {
    throw argTypeError(name, integer ? 'an integer' : 'a number', v);
  }
  if (v < min || v > max) throw argRangeError(name, `${integer ? 'an integer' : 'a number'} from ${min} to ${max}`, v);
  return v;
}

/** A short description of a received value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length?: number }).length ?? v.byteLength})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'function') return 'a function';
  return `an object (${(v as object).constructor?.name ?? 'Object'})`;
}
