/** Stable error codes; tests and callers match on these, never on wording. */
export const ErrorCode = {
  TIMEOUT: 'TIMEOUT',
  PEER_LOST: 'PEER_LOST',
  MISMATCH: 'MISMATCH',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  ABORTED: 'ABORTED',
  DESTROYED: 'DESTROYED',
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  STORE_REFUSED: 'STORE_REFUSED',
  STORE_ERROR: 'STORE_ERROR',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A collective that failed, or a communicator that cannot serve a call. */
export class CollectiveError extends Error {
  readonly code: ErrorCode;
  /** The rank that saw the failure (-1 before a rank is known). */
  readonly rank: number;
  /** The operation that failed, e.g. `allReduce`. */
  readonly operation: string;
  /** For PEER_LOST: the rank that was lost, when it is known. */
  readonly peerRank?: number;
  /** For monitoredBarrier's TIMEOUT on rank 0: the ranks that did not arrive, ascending. */
  readonly missingRanks?: readonly number[];

  constructor(code: ErrorCode, message: string, rank: number, operation: string, peerRank?: number, missingRanks?: readonly number[]) {
    super(message);
    this.name = 'CollectiveError';
    this.code = code;
    this.rank = rank;
    this.operation = operation;
    if (peerRank !== undefined) this.peerRank = peerRank;
    if (missingRanks !== undefined) this.missingRanks = Object.freeze([...missingRanks]);
  }
}

/** @internal A code the addon sent, if it is one of ours; INTERNAL otherwise. */
export function knownCode(code: unknown): ErrorCode {
  const values = Object.values(ErrorCode) as string[];
  return typeof code === 'string' && values.includes(code) ? (code as ErrorCode) : ErrorCode.INTERNAL;
}

/**
 * Turns a rejection from the addon into a CollectiveError whose stack is the
 * caller's (captured when the call was made), not the addon's.
 */
export function fromNative(err: unknown, rank: number, operation: string, site?: { stack?: string }): Error {
  if (err instanceof CollectiveError || err instanceof TypeError || err instanceof RangeError) return err;
  const e = err as { code?: unknown; message?: string; peerRank?: unknown };
  const peer = typeof e?.peerRank === 'number' ? e.peerRank : undefined;
  const out = new CollectiveError(
    knownCode(e?.code),
    `${operation} on rank ${rank}: ${e?.message ?? String(err)}`,
    rank,
    operation,
    peer,
  );
  if (site?.stack) {
    const frames = site.stack.split('\n').slice(1).join('\n');
    out.stack = `${out.name}: ${out.message}\n${frames}`;
  } else {
    SITELESS.add(out);
  }
  return out;
}

/** Errors made without the issuing call's stack: the first wait() that meets one gives it its own. */
const SITELESS = new WeakSet<Error>();

/**
 * @internal Called inside an async wait() that caught `err`: when `err` has no call site, its
 * stack becomes the waiter's (the async frames of whoever awaited), captured below `from`.
 */
export function stackAtWait(err: unknown, from: (...args: never[]) => unknown): unknown {
  if (err instanceof Error && SITELESS.has(err)) {
    SITELESS.delete(err);
    const here: { stack?: string } = {};
    Error.captureStackTrace(here, from);
    const frames = (here.stack ?? '').split('\n').slice(1).join('\n');
    err.stack = `${err.name}: ${err.message}\n${frames}`;
  }
  return err;
}

/** A TypeError for a bad argument, with code INVALID_ARGUMENT. */
export function argTypeError(name: string, expected: string, got: unknown): TypeError {
  const e = new TypeError(`${name}: expected ${expected}, got ${describe(got)}`);
  (e as TypeError & { code: string }).code = ErrorCode.INVALID_ARGUMENT;
  return e;
}

/** A RangeError for an argument of the right type but a wrong value. */
export function argRangeError(name: string, expected: string, got: unknown): RangeError {
  const e = new RangeError(`${name}: expected ${expected}, got ${describe(got)}`);
  (e as RangeError & { code: string }).code = ErrorCode.INVALID_ARGUMENT;
  return e;
}

/** A short description of a received value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (ArrayBuffer.isView(v)) {
    const len = (v as unknown as { length?: number }).length;
    return `${v.constructor.name}(${len ?? v.byteLength})`;
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'function') return 'a function';
  return `an object (${(v as object).constructor?.name ?? 'Object'})`;
}
