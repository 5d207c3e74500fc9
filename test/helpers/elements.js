'use strict';
// Element encoding and comparison for the tests, written without the library
// so that expected values do not share its code. Every value here is a small
// integer: exact in every dtype, so results compare bit for bit.

/** IEEE binary16 bits of an integer n with |n| <= 2048 (exact there). */
function float16Bits(n) {
  if (!Number.isInteger(n) || Math.abs(n) > 2048) throw new RangeError(`float16Bits: ${n} is not an exact small integer`);
  if (n === 0) return Object.is(n, -0) ? 0x8000 : 0;
  const sign = n < 0 ? 0x8000 : 0;
  const a = Math.abs(n);
  let e = 0;
  while (2 ** (e + 1) <= a) e++;
  return sign | ((e + 15) << 10) | ((a - 2 ** e) * 2 ** (10 - e));
}

/** bfloat16 bits of an integer n with |n| <= 256 (exact there). */
function bfloat16Bits(n) {
  if (!Number.isInteger(n) || Math.abs(n) > 256) throw new RangeError(`bfloat16Bits: ${n} is not an exact small integer`);
  if (n === 0) return Object.is(n, -0) ? 0x8000 : 0;
  const sign = n < 0 ? 0x8000 : 0;
  const a = Math.abs(n);
  let e = 0;
  while (2 ** (e + 1) <= a) e++;
  return sign | ((e + 127) << 7) | ((a - 2 ** e) * 2 ** (7 - e));
}

/**
 * Per dtype: how to make an array of n elements, how to store an integer in
 * it, the options a call needs (half types travel in Uint16Array), and
 * whether it is signed / floating.
 */
const DTYPES = {
  float32: { make: (n) => new Float32Array(n), enc: (v) => v, opts: {}, signed: true, floating: true },
  float64: { make: (n) => new Float64Array(n), enc: (v) => v, opts: {}, signed: true, floating: true },
  float16: { make: (n) => new Uint16Array(n), enc: float16Bits, opts: { dtype: 'float16' }, signed: true, floating: true },
  bfloat16: { make: (n) => new Uint16Array(n), enc: bfloat16Bits, opts: { dtype: 'bfloat16' }, signed: true, floating: true },
  int8: { make: (n) => new Int8Array(n), enc: Number, opts: {}, signed: true, floating: false, bits: 8 },
  uint8: { make: (n) => new Uint8Array(n), enc: Number, opts: {}, signed: false, floating: false, bits: 8 },
  int32: { make: (n) => new Int32Array(n), enc: Number, opts: {}, signed: true, floating: false, bits: 32 },
  int64: { make: (n) => new BigInt64Array(n), enc: BigInt, opts: {}, signed: true, floating: false, bits: 64 },
};

/**
 * An array of dtype `d` holding `values` (numbers, or BigInts for integer
 * dtypes; an integer value must already be in the dtype's range).
 */
function encode(d, values) {
  const t = DTYPES[d];
  const a = t.make(values.length);
  for (let i = 0; i < values.length; i++) a[i] = t.enc(values[i]);
  return a;
}

function bytesOf(a) {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Compares two typed arrays byte for byte. Returns null when equal, else a
 * short description of the first difference.
 */
function firstDifference(got, want) {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  const g = bytesOf(got);
  const w = bytesOf(want);
  const size = got.BYTES_PER_ELEMENT;
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) {
      const k = Math.floor(i / size);
      let bad = 0;
      for (let j = k; j < got.length; j++) if (got[j] !== want[j]) bad++;
      const show = (x) => (got instanceof Uint16Array ? `0x${x.toString(16).padStart(4, '0')}` : String(x));
      return `element ${k} of ${got.length} is ${show(got[k])}, expected ${show(want[k])} (${bad} elements differ)`;
    }
  }
  return null;
}

module.exports = { float16Bits, bfloat16Bits, DTYPES, encode, firstDifference, bytesOf };
