import { checkAttached, keepAttached } from './attach';
import { argRangeError, argTypeError } from './errors';

/** Element types. float16 and bfloat16 travel in Uint16Array. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int8' | 'uint8' | 'int32' | 'int64';

/** band, bor and bxor (torch's BAND/BOR/BXOR) are defined on integer dtypes, on host arrays only. */
export type ReduceOp = 'sum' | 'prod' | 'min' | 'max' | 'avg' | 'band' | 'bor' | 'bxor';

export type HostArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int32Array
  | BigInt64Array;

/** Codes shared with native/dtype.h. */
export const DTYPE_CODE: Record<DType, number> = {
  float32: 0,
  float64: 1,
  float16: 2,
  bfloat16: 3,
  int8: 4,
  uint8: 5,
  int32: 6,
  int64: 7,
};

export const REDUCE_OP_CODE: Record<ReduceOp, number> = { sum: 0, prod: 1, min: 2, max: 3, avg: 4, band: 5, bor: 6, bxor: 7 };

export const DTYPES = Object.keys(DTYPE_CODE) as DType[];
export const REDUCE_OPS = Object.keys(REDUCE_OP_CODE) as ReduceOp[];

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int8: 1,
  uint8: 1,
  int32: 4,
  int64: 8,
};

export function isBitwise(op: ReduceOp): boolean {
  return op === 'band' || op === 'bor' || op === 'bxor';
}

export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

const ARRAY_FOR: Record<DType, string[]> = {
  float32: ['Float32Array'],
  float64: ['Float64Array'],
  float16: ['Uint16Array'],
  bfloat16: ['Uint16Array'],
  int8: ['Int8Array'],
  uint8: ['Uint8Array', 'Uint8ClampedArray'],
  int32: ['Int32Array'],
  int64: ['BigInt64Array'],
};

function arrayKind(a: ArrayBufferView): string {
  return Object.prototype.toString.call(a).slice(8, -1);
}

/** A typed array that this library can carry, or a TypeError naming `name`. */
export function checkArray(name: string, a: unknown): HostArray {
  if (!ArrayBuffer.isView(a) || a instanceof DataView) {
    throw argTypeError(name, 'a typed array (Float32Array, Float64Array, Uint16Array, Int8Array, Uint8Array, Int32Array or BigInt64Array)', a);
  }
  const kind = arrayKind(a);
  if (kind === 'Uint32Array' || kind === 'Int16Array' || kind === 'BigUint64Array' || kind === 'Float16Array') {
    throw argTypeError(name, 'a typed array of a supported dtype', a);
  }
  const buf = a.buffer as ArrayBufferLike & { resizable?: boolean; growable?: boolean };
  if (buf.resizable === true || buf.growable === true) {
    // Such memory can move or shrink while the operation runs off-thread.
    throw argTypeError(name, 'a typed array over a fixed-length buffer, not a resizable one', a);
  }
  checkAttached(name, a);
  keepAttached(a);
  return a as HostArray;
}

/** The dtype an array carries: given explicitly, or inferred from its type. */
export function resolveDType(name: string, a: HostArray, dtype: unknown): DType {
  const kind = arrayKind(a);
  if (dtype !== undefined) {
    if (typeof dtype !== 'string' || !(dtype in DTYPE_CODE)) {
      throw argTypeError('dtype', `one of ${DTYPES.join(', ')}`, dtype);
    }
    const d = dtype as DType;
    if (!ARRAY_FOR[d].includes(kind)) {
      throw argTypeError(name, `${ARRAY_FOR[d].join(' or ')} for dtype ${d}`, a);
    }
    return d;
  }
  switch (kind) {
    case 'Float32Array':
      return 'float32';
    case 'Float64Array':
      return 'float64';
    case 'Int8Array':
      return 'int8';
    case 'Uint8Array':
    case 'Uint8ClampedArray':
      return 'uint8';
    case 'Int32Array':
      return 'int32';
    case 'BigInt64Array':
      return 'int64';
    case 'Uint16Array':
      throw argTypeError('dtype', "'float16' or 'bfloat16' for a Uint16Array", dtype);
    default:
      throw argTypeError(name, 'a typed array of a supported dtype', a);
  }
}

export function checkReduceOp(op: unknown, dtype: DType): ReduceOp {
  if (op === undefined) return 'sum';
  if (typeof op !== 'string' || !(op in REDUCE_OP_CODE)) {
    throw argTypeError('options.op', `one of ${REDUCE_OPS.join(', ')}`, op);
  }
  if (op === 'avg' && !isFloating(dtype)) {
    throw argRangeError('options.op', `'avg' only with a floating dtype (dtype is ${dtype})`, op);
  }
  if (isBitwise(op as ReduceOp) && isFloating(dtype)) {
    throw argRangeError('options.op', `'${op}' only with an integer dtype (dtype is ${dtype})`, op);
  }
  return op as ReduceOp;
}
