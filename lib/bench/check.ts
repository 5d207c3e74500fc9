/**
 * The check (-c 1): inputs whose results are exact in any order of reduction, expected
 * outputs computed here from the inputs alone (not by the library), and a count of the
 * elements that differ bit for bit.
 *
 * Every input is a small integer, so every partial sum, product, min and max is exactly
 * representable in the dtype whatever order the engine reduces in:
 * - sum, min, max: (7·rank + i) mod m with n·(m−1) within the dtype's exact integers;
 * - prod: 2 where (rank + i) mod 4 is 0, else 1 — products are powers of two;
 * - avg: c(i) + d(rank, i) where the d of ranks paired 0–1, 2–3, … are +1 and −1 (and 0 on an
 *   odd last rank), so the sum is n·c(i) and the average exactly c(i);
 * - data movement (all-gather, broadcast, all-to-all): (37·rank + i) mod the dtype's count of
 *   exact integers, so a misplaced element shows.
 */

import type { DType, HostArray } from '../core/dtypes';
import type { BenchOp, Layout, Redop } from './ops';

/** Largest L with every integer 0..L exact in the dtype (uint8 stops at 254: 255 is the poison). */
export const EXACT_LIMIT: Record<DType, number> = {
  float32: 2 ** 24,
  float64: 2 ** 53,
  float16: 2048,
  bfloat16: 256,
  int8: 127,
  uint8: 254,
  int32: 2 ** 31 - 1,
  int64: 2 ** 53,
};

const INT_BITS: Partial<Record<DType, number>> = { int8: 8, uint8: 8, int32: 32, int64: 64 };

/**
 * Input element i of rank `rank` (a small integer). `period`: values(r, i) equals
 * values(r, i mod period) for every rank.
 */
export interface ValueFn {
  (rank: number, i: number): number;
  period: number;
}

function withPeriod(f: (rank: number, i: number) => number, period: number): ValueFn {
  return Object.assign(f, { period });
}

/** The inputs for a reduction `redop` (or 'none': data movement) over n ranks. */
export function inputValues(redop: Redop, dtype: DType, n: number): ValueFn {
  const limit = EXACT_LIMIT[dtype];
  switch (redop) {
    case 'none': {
      const distinct = Math.min(limit + 1, 1 << 20);
      return withPeriod((r, i) => ((37 * r) % distinct + (i % distinct)) % distinct, distinct);
    }
    case 'prod':
      return withPeriod((r, i) => ((r + i) % 4 === 0 ? 2 : 1), 4);
    case 'avg': {
      const m = Math.max(1, Math.min(64, Math.floor(limit / n)));
      const paired = n - (n % 2);
      return withPeriod((r, i) => (i % m) + (r < paired ? ((r + i) % 2 === 0 ? 1 : -1) : 0), 2 * m);
    }
    default: {
      const m = Math.max(1, Math.min(64, Math.floor(limit / n) + 1));
      return withPeriod((r, i) => (7 * r + i) % m, m);
    }
  }
}

/** The exact reduction of small-integer inputs, wrapped to the dtype for integer types. */
export function reduceExact(redop: Redop, dtype: DType, values: readonly number[]): number | bigint {
  const bits = INT_BITS[dtype];
  if (bits !== undefined) {
    let acc = BigInt(values[0]);
    for (let j = 1; j < values.length; j++) {
      const v = BigInt(values[j]);
      if (redop === 'sum') acc += v;
      else if (redop === 'prod') acc *= v;
      else if (redop === 'min') acc = v < acc ? v : acc;
      else if (redop === 'max') acc = v > acc ? v : acc;
      else throw new RangeError(`reduceExact: ${redop} is not defined on ${dtype}`);
    }
    return dtype === 'uint8' ? BigInt.asUintN(8, acc) : BigInt.asIntN(bits, acc);
  }
  let acc = values[0];
  for (let j = 1; j < values.length; j++) {
    const v = values[j];
    if (redop === 'sum' || redop === 'avg') acc += v;
    else if (redop === 'prod') acc *= v;
    else if (redop === 'min') acc = Math.min(acc, v);
    else if (redop === 'max') acc = Math.max(acc, v);
    else throw new RangeError(`reduceExact: ${redop} is not a reduction`);
  }
  return redop === 'avg' ? acc / values.length : acc;
}

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of x, rounded to nearest even (x goes through float32 first). */
export function float16Bits(x: number): number {
  f32[0] = x;
  const b = f32Bits[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** bfloat16 bits of x, rounded to nearest even (x goes through float32 first). */
export function bfloat16Bits(x: number): number {
  f32[0] = x;
  const b = f32Bits[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) & 0x8000) | 0x7fc0;
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** How a value is stored in an array of the dtype. */
export function encodeValue(dtype: DType, v: number | bigint): number | bigint {
  switch (dtype) {
    case 'float16':
      return float16Bits(Number(v));
    case 'bfloat16':
      return bfloat16Bits(Number(v));
    case 'int64':
      return BigInt(v);
    default:
      return Number(v);
  }
}

/** A zero-filled array of `length` elements of the dtype. */
export function allocArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(length);
    case 'int8':
      return new Int8Array(length);
    case 'uint8':
      return new Uint8Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'int64':
      return new BigInt64Array(length);
  }
}

// The inputs are a few hundred distinct integers at most: encode each once.
function cachedEncoder(dtype: DType): (v: number | bigint) => number | bigint {
  if (dtype !== 'float16' && dtype !== 'bfloat16') return (v) => encodeValue(dtype, v);
  const cache = new Map<number, number>();
  return (v) => {
    const x = Number(v);
    let bits = cache.get(x);
    if (bits === undefined) {
      bits = encodeValue(dtype, x) as number;
      cache.set(x, bits);
    }
    return bits;
  };
}

/** Fills `a` with rank `rank`'s inputs. */
export function fillInput(a: HostArray, dtype: DType, values: ValueFn, rank: number): void {
  const enc = cachedEncoder(dtype);
  const out = a as unknown as { [k: number]: number | bigint };
  for (let i = 0; i < a.length; i++) out[i] = enc(values(rank, i));
}

/** Sets every byte to 0xff: NaN in the floating dtypes, −1 or 255 in the integer ones. */
export function poison(a: HostArray): void {
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength).fill(0xff);
}

/** The result `op` must leave on `rank` (length elements), computed from the inputs alone. */
export function expectedResult(
  op: BenchOp,
  layout: Layout,
  length: number,
  dtype: DType,
  redop: Redop,
  n: number,
  rank: number,
  root: number,
): HostArray {
  const values = inputValues(redop, dtype, n);
  const enc = cachedEncoder(dtype);
  const out = allocArray(dtype, length);
  const o = out as unknown as { [k: number]: number | bigint };
  const column: number[] = new Array<number>(n);
  // A reduced element depends only on its index modulo the inputs' period.
  const memo = new Map<number, number | bigint>();
  for (let k = 0; k < length; k++) {
    const s = op.source(k, rank, layout, root);
    if (s.kind === 'copy') {
      o[k] = enc(values(s.rank, s.index));
      continue;
    }
    const key = s.index % values.period;
    let v = memo.get(key);
    if (v === undefined) {
      for (let r = 0; r < n; r++) column[r] = values(r, key);
      v = enc(reduceExact(redop, dtype, column));
      memo.set(key, v);
    }
    o[k] = v;
  }
  return out;
}

/** Elements of `actual` that differ bit for bit from `expected` (a length mismatch counts all). */
export function countWrong(actual: HostArray, expected: HostArray): number {
  if (actual.length !== expected.length || actual.BYTES_PER_ELEMENT !== expected.BYTES_PER_ELEMENT) {
    return Math.max(actual.length, expected.length);
  }
  const size = actual.BYTES_PER_ELEMENT;
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  let wrong = 0;
  for (let k = 0; k < actual.length; k++) {
    const base = k * size;
    for (let j = 0; j < size; j++) {
      if (a[base + j] !== e[base + j]) {
        wrong++;
        break;
      }
    }
  }
  return wrong;
}
