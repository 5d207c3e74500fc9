'use strict';
// Host elementwise ops (lib/ops/ over native/ops): AdamW and the Nesterov
// outer step against a reference that rounds to float32 after every
// operation, in the order elementwise_math.h computes (Math.fround of a double
// operation on two float32 values is the correctly rounded float32 result for
// + - * / and sqrt, so the reference must match bit for bit), and against
// PyTorch's formulas in float64 (the semantics, within float32 rounding);
// axpy / scale on exact cases; casts on known bit patterns, every float16 and
// bfloat16 pattern, ties to even, NaN / Inf; argument checks.
//
// Numbered 55: lib/ops sits above the core (launcher, init, collectives,
// backends, lifecycle: 0x–5x), as the training layer that uses it will, so
// its tests run once the layers below have passed and a broken core fails
// there first, under its own name.

const assert = require('node:assert/strict');
const { adamwStep, nesterovStep, axpy, scale, cast } = require('../dist/ops');
const { loadAddon } = require('../dist/core/loader');
const { random } = require('./helpers/quant-reference');

const f = Math.fround;

function randomArray(n, seed, sd = 1) {
  const r = random(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * sd * 2 ** Math.floor(r() * 8 - 4);
  return a;
}

function assertSameBits(actual, expected, what) {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) assert.fail(`${what}: element ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}

// elementwise_math.h's adamwElement, one float32 rounding per operation.
function adamwFloat32(p, g, m, v, o) {
  const decay = f(1 - o.lr * o.weightDecay);
  const b1 = f(o.beta1), omb1 = f(1 - o.beta1), b2 = f(o.beta2), omb2 = f(1 - o.beta2);
  const stepSize = f(o.lr / (1 - o.beta1 ** o.step));
  const bc2 = f(Math.sqrt(1 - o.beta2 ** o.step));
  const eps = f(o.eps);
  for (let i = 0; i < p.length; i++) {
    const pd = f(p[i] * decay);
    const mn = f(f(b1 * m[i]) + f(omb1 * g[i]));
    const vn = f(f(b2 * v[i]) + f(omb2 * f(g[i] * g[i])));
    const denom = f(f(f(Math.sqrt(vn)) / bc2) + eps);
    p[i] = f(pd - f(stepSize * f(mn / denom)));
    m[i] = mn;
    v[i] = vn;
  }
}

// torch.optim.AdamW's single-tensor step, in float64.
function adamwTorch(p, g, m, v, o) {
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - o.lr * o.weightDecay;
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
    const denom = Math.sqrt(v[i]) / Math.sqrt(1 - o.beta2 ** o.step) + o.eps;
    p[i] -= (o.lr / (1 - o.beta1 ** o.step)) * (m[i] / denom);
  }
}

describe('55 ops: elementwise operations on host arrays', function () {
  describe('adamwStep', function () {
    const n = 10007;
    const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

    it('equals a float32 step-by-step reference bit for bit over five steps', function () {
      const p = randomArray(n, 1), m = new Float32Array(n), v = new Float32Array(n);
      const rp = p.slice(), rm = m.slice(), rv = v.slice();
      for (let step = 1; step <= 5; step++) {
        const g = randomArray(n, 10 + step, step === 3 ? 1e-6 : 0.1);
        adamwStep(p, g, m, v, { ...hyper, step });
        adamwFloat32(rp, g, rm, rv, { ...hyper, step });
        assertSameBits(p, rp, `param after step ${step}`);
        assertSameBits(m, rm, `expAvg after step ${step}`);
        assertSameBits(v, rv, `expAvgSq after step ${step}`);
      }
    });

    it("follows torch.optim.AdamW's formulas (float64 reference, float32 tolerance)", function () {
      const p = randomArray(n, 2), m = new Float32Array(n), v = new Float32Array(n);
      const rp = Float64Array.from(p), rm = new Float64Array(n), rv = new Float64Array(n);
      for (let step = 1; step <= 10; step++) {
        const g = randomArray(n, 30 + step, 0.1);
        const o = { lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, step };
        adamwStep(p, g, m, v, o);
        adamwTorch(rp, g, rm, rv, o);
      }
      // Each step moves p by at most ~lr (Adam's update is bounded by lr per step), and
      // every float32 operation errs by 2^-24 relative: 1e-5 absolute + 1e-5 relative
      // is far above the accumulated rounding and far below any semantic difference
      // (a missed bias correction or weight decay changes p by ~1e-3).
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(p[i] - rp[i]) <= 1e-5 + 1e-5 * Math.abs(rp[i]), `param ${i}: ${p[i]} vs ${rp[i]}`);
        assert.ok(Math.abs(m[i] - rm[i]) <= 1e-6 * (1 + Math.abs(rm[i])), `expAvg ${i}`);
      }
    });

    it('uses the defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2', function () {
      const p = randomArray(64, 3), g = randomArray(64, 4);
      const a = p.slice(), am = new Float32Array(64), av = new Float32Array(64);
      adamwStep(p, g, new Float32Array(64), new Float32Array(64), { step: 1 });
      adamwFloat32(a, g, am, av, { ...hyper, step: 1 });
      assertSameBits(p, a, 'param');
    });

    it('handles empty arrays', function () {
      const e = new Float32Array(0);
      adamwStep(e, new Float32Array(0), new Float32Array(0), new Float32Array(0), { step: 1 });
    });
  });

  describe('nesterovStep', function () {
    it('equals the float32 reference bit for bit and torch SGD(nesterov) in float64', function () {
      const n = 4099;
      const p = randomArray(n, 5), buf = new Float32Array(n);
      const rp = p.slice(), rb = buf.slice();
      const tp = Float64Array.from(p);
      let tbuf = null;
      const lr = 0.7, mu = 0.9;
      for (let step = 1; step <= 4; step++) {
        const delta = randomArray(n, 50 + step, 0.01);
        nesterovStep(p, delta, buf, { lr, momentum: mu });
        for (let i = 0; i < n; i++) {
          const b = f(f(f(mu) * rb[i]) + delta[i]);
          rp[i] = f(rp[i] - f(f(lr) * f(delta[i] + f(f(mu) * b))));
          rb[i] = b;
        }
        assertSameBits(p, rp, `param after step ${step}`);
        assertSameBits(buf, rb, `buffer after step ${step}`);
        // torch.optim.SGD: buf = delta on the first step, then mu * buf + delta; p -= lr * (delta + mu * buf).
        tbuf = tbuf === null ? Float64Array.from(delta) : tbuf.map((b, i) => mu * b + delta[i]);
        for (let i = 0; i < n; i++) tp[i] -= lr * (delta[i] + mu * tbuf[i]);
      }
      for (let i = 0; i < n; i++) assert.ok(Math.abs(p[i] - tp[i]) <= 1e-6 * (1 + Math.abs(tp[i])), `param ${i}`);
    });
  });

  describe('axpy and scale', function () {
    it('axpy: exact cases, aliasing, Infinity', function () {
      const y = Float32Array.of(1, 2, 3, -0, Infinity);
      axpy(0.5, Float32Array.of(1, 1, 1, 0, 1), y);
      assert.deepEqual([...y], [1.5, 2.5, 3.5, 0, Infinity]);
      const z = Float32Array.of(1, -2, 4);
      axpy(1, z, z);
      assert.deepEqual([...z], [2, -4, 8]);
    });

    it('axpy: y + a*x with float32 rounding, on a long array', function () {
      const n = 100003;
      const x = randomArray(n, 6), y = randomArray(n, 7), r = y.slice();
      const a = f(-0.3);
      axpy(-0.3, x, y);
      for (let i = 0; i < n; i++) r[i] = f(r[i] + f(a * x[i]));
      assertSameBits(y, r, 'axpy');
    });

    it('scale: exact cases and rounding', function () {
      const x = Float32Array.of(1, -3, 0.75, NaN, -Infinity);
      scale(2, x);
      assert.deepEqual([...x], [2, -6, 1.5, NaN, -Infinity]);
      const y = randomArray(1001, 8), r = y.slice();
      scale(1.1, y);
      for (let i = 0; i < r.length; i++) r[i] = f(r[i] * f(1.1));
      assertSameBits(y, r, 'scale');
    });
  });

  describe('cast', function () {
    const toHalf = (values, dtype) => {
      const out = new Uint16Array(values.length);
      cast(Float32Array.from(values), out, { outputDtype: dtype });
      return [...out];
    };

    it('float32 -> float16: known patterns, ties to even, subnormals, overflow, NaN', function () {
      assert.deepEqual(
        toHalf([1, -2, 65504, 65519, 65520, 1e6, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -0, Infinity, -Infinity, NaN], 'float16'),
        [0x3c00, 0xc000, 0x7bff, 0x7bff, 0x7c00, 0x7c00, 0x0400, 0x0001, 0x0000, 0x0002, 0x3c00, 0x3c02, 0x8000, 0x7c00, 0xfc00, 0x7e00],
      );
      assert.deepEqual(toHalf([1 / 3], 'float16'), [0x3555]);
    });

    it('float32 -> bfloat16: known patterns, ties to even, overflow, NaN', function () {
      assert.deepEqual(
        toHalf([1, -2, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4028234663852886e38, -0, Infinity, NaN, 2 ** -133], 'bfloat16'),
        [0x3f80, 0xc000, 0x3f80, 0x3f82, 0x7f80, 0x8000, 0x7f80, 0x7fc0, 0x0001],
      );
    });

    it('every float16 and bfloat16 value round-trips through float32 exactly; NaN stays NaN', function () {
      const all = new Uint16Array(65536).map((_, i) => i);
      for (const dtype of ['float16', 'bfloat16']) {
        const wide = new Float32Array(65536), back = new Uint16Array(65536);
        cast(all, wide, { inputDtype: dtype });
        cast(wide, back, { outputDtype: dtype });
        for (let h = 0; h < 65536; h++) {
          const nan = dtype === 'float16' ? (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 : (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
          if (nan) {
            assert.ok(Number.isNaN(wide[h]), `${dtype} ${h.toString(16)} is NaN in float32`);
            assert.ok(back[h] === (h | (dtype === 'float16' ? 0x200 : 0x40)), `${dtype} NaN ${h.toString(16)} comes back a quiet NaN`);
          } else {
            assert.equal(back[h], h, `${dtype} ${h.toString(16)}`);
          }
        }
      }
      // The float16 decoder against the format's definition.
      const wide = new Float32Array(65536);
      cast(all, wide, { inputDtype: 'float16' });
      for (let h = 0; h < 0x7c00; h += 7) {
        const e = h >> 10, m = h & 0x3ff;
        const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
        assert.equal(wide[h], v);
        assert.equal(wide[h | 0x8000], -v);
      }
    });

    it('float16 <-> bfloat16 rounds once, through float32; float32 -> float32 copies', function () {
      const out = new Uint16Array(3);
      cast(Uint16Array.of(0x3c00, 0x3555, 0x7bff), out, { inputDtype: 'float16', outputDtype: 'bfloat16' });
      assert.deepEqual([...out], [0x3f80, 0x3eab, 0x4780]);
      const back = new Uint16Array(2);
      cast(Uint16Array.of(0x3f80, 0x7f7f), back, { inputDtype: 'bfloat16', outputDtype: 'float16' });
      assert.deepEqual([...back], [0x3c00, 0x7c00]);
      const c = new Float32Array(2);
      cast(Float32Array.of(1.5, -0), c);
      assert.ok(Object.is(c[1], -0) && c[0] === 1.5);
    });
  });

  describe('argument checks', function () {
    const invalid = (fn, type, pattern) => assert.throws(fn, (e) => e instanceof type && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message));
    const a4 = () => [new Float32Array(4), new Float32Array(4), new Float32Array(4), new Float32Array(4)];

    it('adamwStep', function () {
      const [p, g, m, v] = a4();
      invalid(() => adamwStep(new Float64Array(4), g, m, v, { step: 1 }), TypeError, /^param: expected a Float32Array, got Float64Array\(4\)/);
      invalid(() => adamwStep(p, new Float32Array(3), m, v, { step: 1 }), RangeError, /^grad: expected a Float32Array of 4 elements, got Float32Array\(3\)/);
      invalid(() => adamwStep(p, g, m, v, {}), TypeError, /^options.step: expected an integer, got undefined/);
      invalid(() => adamwStep(p, g, m, v), TypeError, /^options: expected an options object with step/);
      invalid(() => adamwStep(p, g, m, v, { step: 0 }), RangeError, /^options.step/);
      invalid(() => adamwStep(p, g, m, v, { step: 1, beta1: 1 }), RangeError, /^options.beta1: expected a number in \[0, 1\), got 1/);
      invalid(() => adamwStep(p, g, m, v, { step: 1, lr: NaN }), RangeError, /^options.lr: expected a finite number/);
      invalid(() => adamwStep(p, g, m, v, { step: 1, momentum: 1 }), TypeError, /^options.momentum/);
      invalid(() => adamwStep(p, g, p, v, { step: 1 }), RangeError, /^expAvg: expected memory apart from param/);
      const shared = new Float32Array(8);
      invalid(() => adamwStep(shared.subarray(0, 4), shared.subarray(2, 6), m, v, { step: 1 }), RangeError, /^grad: expected memory apart from param/);
    });

    it('nesterovStep, axpy, scale', function () {
      const [p, d, b] = a4();
      invalid(() => nesterovStep(p, d, b, { lr: 0.7 }), TypeError, /^options.momentum: expected a number, got undefined/);
      invalid(() => nesterovStep(p, d, d, { lr: 0.7, momentum: 0.9 }), RangeError, /^momentumBuffer: expected memory apart from delta/);
      invalid(() => axpy('2', p, d), TypeError, /^a: expected a number, got "2"/);
      invalid(() => axpy(2, p, new Float32Array(5)), RangeError, /^y: expected a Float32Array of 4 elements/);
      const s = new Float32Array(8);
      invalid(() => axpy(2, s.subarray(0, 4), s.subarray(1, 5)), RangeError, /^y: expected the same array as x or memory apart from it/);
      invalid(() => scale(2, [1, 2]), TypeError, /^x: expected a Float32Array, got an array of 2/);
      invalid(() => scale(Infinity, p), RangeError, /^a: expected a finite number, got Infinity/);
    });

    it('cast', function () {
      invalid(() => cast(new Uint16Array(2), new Float32Array(2)), TypeError, /^dtype: expected 'float16' or 'bfloat16' for a Uint16Array/);
      invalid(() => cast(new Int32Array(2), new Float32Array(2)), TypeError, /^input: expected float32, float16 or bfloat16 data, got "int32 data"/);
      invalid(() => cast(new Float32Array(2), new Float32Array(3)), RangeError, /^output: expected 2 elements \(the input's length\), got 3/);
      invalid(() => cast(new Float32Array(2), new Uint16Array(2), { outputDtype: 'float64' }), TypeError, /^output: expected Float64Array for dtype float64/);
      const buf = new ArrayBuffer(16);
      invalid(() => cast(new Float32Array(buf, 0, 2), new Uint16Array(buf, 4, 2), { outputDtype: 'float16' }), RangeError, /^output: expected memory apart from input/);
    });

    it('the native backstop rejects what the TypeScript layer would', function () {
      const { ops } = loadAddon();
      const [p, g, m, v] = a4();
      invalid(() => ops.adamwStep(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0, 0), RangeError, /step/);
      invalid(() => ops.adamwStep(p, g, m, v, 1e-3, 1.5, 0.999, 1e-8, 0, 1), RangeError, /beta1/);
      invalid(() => ops.adamwStep(p, new Float32Array(2), m, v, 1e-3, 0.9, 0.999, 1e-8, 0, 1), RangeError, /grad/);
      invalid(() => ops.adamwStep(p, p, m, v, 1e-3, 0.9, 0.999, 1e-8, 0, 1), RangeError, /grad: expected memory apart from param/);
      invalid(() => ops.nesterovStep(p, g, m, 'x', 0.9), TypeError, /lr/);
      invalid(() => ops.axpy(1, p, new Float32Array(3)), RangeError, /y/);
      invalid(() => ops.scale(new Int32Array(4), 2), TypeError, /x/);
      invalid(() => ops.cast(p, 0, new Float64Array(4), 1), TypeError, /outputDtype/);
      invalid(() => ops.cast(p, 0, new Uint16Array(3), 2), RangeError, /output/);
    });
  });
});
