'use strict';
// An independent float64 model of the blockwise formats for the tests: the
// grids, the per-element error bound of each format, and the block layout of
// native/quant/FORMAT.md. Nothing here calls the library.

const MAX = { int8: 127, int4: 7, fp8e4m3: 448, fp8e5m2: 57344 };
// fp8: relative half-step of a normal value, and half the subnormal step (in
// units of the scale).
const FP8 = { fp8e4m3: { rel: 2 ** -4, sub: 2 ** -10 }, fp8e5m2: { rel: 2 ** -3, sub: 2 ** -17 } };

/** The largest error of one element |v| in a block with scale `s`. */
function elementBound(format, v, s) {
  if (format === 'int8' || format === 'int4') return s / 2;
  const f = FP8[format];
  return Math.max(f.rel * Math.abs(v), f.sub * s);
}

/** Scale of a block whose largest magnitude is `absmax` (before the 1-ulp round-up). */
function scaleOf(format, absmax) {
  return absmax / MAX[format];
}

/** Every value of the e4m3 / e5m2 grid (finite codes), computed from the definition. */
function fp8Grid(format) {
  const [ebits, mbits, bias] = format === 'fp8e4m3' ? [4, 3, 7] : [5, 2, 15];
  const out = [];
  for (let e = 0; e < 2 ** ebits; e++) {
    for (let m = 0; m < 2 ** mbits; m++) {
      if (format === 'fp8e4m3' && e === 15 && m === 7) continue; // NaN
      if (format === 'fp8e5m2' && e === 31) continue; // Inf, NaN
      const v = e === 0 ? m * 2 ** (1 - bias - mbits) : (1 + m / 2 ** mbits) * 2 ** (e - bias);
      out.push(v, -v);
    }
  }
  return out;
}

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Largest |x| of each block of `blockSize` elements of x[start, start + n). */
function blockAbsmax(x, start, n, blockSize) {
  const out = [];
  for (let b = 0; b < n; b += blockSize) {
    let m = 0;
    for (let i = b; i < Math.min(n, b + blockSize); i++) m = Math.max(m, Math.abs(x[start + i]));
    out.push(m);
  }
  return out;
}

module.exports = { MAX, FP8, elementBound, scaleOf, fp8Grid, random, blockAbsmax };
