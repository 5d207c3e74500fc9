'use strict';
// The elementwise operations (lib/ops/) and the codecs (lib/core/quantized.ts) on DeviceBuffers,
// against the same functions on host arrays: AdamW and Nesterov within 1 ulp, axpy, scale,
// cast and every quantized byte (stochastic rounding and error feedback included) bit for bit;
// views at offsets; and the argument errors (host and device mixed, freed, wrong dtype, length,
// overlap, alignment). On a GPU this checks the CUDA kernels through the public API (the
// expected values come from the host code, a separate path). test/45.backends.test.js also runs
// it against host-memory stand-ins for the CUDA runtime and the kernels library
// (test/fixtures/fake-gpu), where it checks the wiring: arguments, offsets, dtype codes, errors.
// Skipped, saying why, without CUDA or without libcollectives_cuda.

const assert = require('node:assert/strict');
const path = require('node:path');
const { deviceBuffers, isCode } = require('../helpers/gpu');

const c = { ...require(path.join(__dirname, '..', '..', 'dist')), ...require(path.join(__dirname, '..', '..', 'dist', 'ops')) };
const { backends, DeviceBuffer, CollectiveError } = c;

const N = 1000;
const FLOATS = ['float32', 'float16', 'bfloat16'];

/** Deterministic values in [-scale, scale), with a few exact zeros. */
function values(n, seed, scale = 4) {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, (_, i) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return i % 97 === 0 ? 0 : (((s >>> 0) / 2 ** 32) * 2 - 1) * scale;
  });
}

/** Host data of a float dtype (half types as their bits in a Uint16Array), from float32 values. */
function hostData(dtype, f32) {
  if (dtype === 'float32') return f32;
  const out = new Uint16Array(f32.length);
  c.cast(f32, out, { outputDtype: dtype });
  return out;
}

/** At most `ulps` units in the last place apart, element by element (same sign or both zero). */
function assertUlps(actual, expected, ulps, what) {
  assert.equal(actual.length, expected.length);
  const a = new Int32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Int32Array(expected.buffer, expected.byteOffset, expected.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    if (d > worst) worst = d;
    if (d > ulps) assert.fail(`${what}: element ${i}: ${actual[i]} vs ${expected[i]} (${d} ulps apart)`);
  }
  return worst;
}

describe('gpu 25 ops and codecs on DeviceBuffers', function () {
  before(function () {
    const cuda = backends().cuda;
    if (!cuda.available) {
      console.log(`      skipped: no GPU: ${cuda.reason}`);
      this.skip();
    }
    if (!cuda.kernels.available) {
      console.log(`      skipped: no CUDA kernels library: ${cuda.kernels.reason}`);
      this.skip();
    }
  });

  const { live, dev, freeAll } = deviceBuffers();
  /** A view of `n` elements at element `offset` of a larger buffer (guards around it), holding `host`. */
  function view(dtype, host, offset = 3) {
    const parent = dev(dtype, host.length + offset + 5).fill(0);
    return parent.subarray(offset, offset + host.length).copyFrom(host);
  }
  afterEach(freeAll);

  it('adamwStep: within 1 ulp of the host step, over several steps, on views at offsets', function () {
    const p = values(N, 1), g = values(N, 2), m = values(N, 3, 0.1), v = values(N, 4, 1).map(Math.abs);
    const dp = view('float32', p, 1), dg = view('float32', g, 2), dm = view('float32', m, 3), dv = view('float32', v, 4);
    const hp = p.slice(), hm = m.slice(), hv = v.slice();
    let worst = 0;
    for (let step = 1; step <= 3; step++) {
      const options = { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, step };
      c.adamwStep(hp, g, hm, hv, options);
      c.adamwStep(dp, dg, dm, dv, options);
      worst = Math.max(worst, assertUlps(dp.copyTo(), hp, 1, `param after step ${step}`));
      assertUlps(dm.copyTo(), hm, 1, `expAvg after step ${step}`);
      assertUlps(dv.copyTo(), hv, 1, `expAvgSq after step ${step}`);
    }
    assert.deepEqual(dg.copyTo(), g, 'grad is read only');
  });

  it('nesterovStep: within 1 ulp of the host step', function () {
    const p = values(N, 5), d = values(N, 6, 0.5), b = new Float32Array(N);
    const dp = view('float32', p), dd = view('float32', d, 5), db = dev('float32', b);
    const hp = p.slice(), hb = b.slice();
    for (let i = 0; i < 3; i++) {
      c.nesterovStep(hp, d, hb, { lr: 0.7, momentum: 0.9 });
      c.nesterovStep(dp, dd, db, { lr: 0.7, momentum: 0.9 });
      assertUlps(dp.copyTo(), hp, 1, 'param');
      assertUlps(db.copyTo(), hb, 1, 'momentumBuffer');
    }
  });

  it('axpy and scale: bitwise equal to the host, x may be y itself', function () {
    const x = values(N, 7), y = values(N, 8);
    const dx = view('float32', x, 7), dy = view('float32', y, 1);
    const hy = y.slice();
    c.axpy(-0.375, x, hy);
    c.axpy(-0.375, dx, dy);
    assert.deepEqual(dy.copyTo(), hy);
    c.axpy(3, hy, hy);
    c.axpy(3, dy, dy);
    assert.deepEqual(dy.copyTo(), hy);
    c.scale(1 / 3, hy);
    c.scale(1 / 3, dy);
    assert.deepEqual(dy.copyTo(), hy);
    // The guards around the views are untouched.
    const whole = live[1].copyTo(); // the parent of dy
    assert.equal(whole[0], 0);
    assert.equal(whole[whole.length - 1], 0);
  });

  it('cast: every pair of float32, float16, bfloat16 bitwise equal to the host', function () {
    const f = values(N, 9, 70000); // beyond float16's range: overflow to infinity too
    f[1] = NaN;
    f[2] = -0;
    f[3] = 1e-8; // a float16 subnormal
    for (const from of FLOATS) {
      const input = hostData(from, f);
      for (const to of FLOATS) {
        const expected = to === 'float32' ? new Float32Array(N) : new Uint16Array(N);
        c.cast(input, expected, { inputDtype: from === 'float32' ? undefined : from, outputDtype: to === 'float32' ? undefined : to });
        const out = view(to, expected.map(() => 0), 2);
        c.cast(view(from, input, 1), out);
        assert.deepEqual(out.copyTo(), expected, `${from} to ${to}`);
      }
    }
  });

  for (const format of c.QUANT_FORMATS) {
    it(`quantize / dequantize ${format}: the host's bytes and values, from every float dtype, stochastic and with error feedback`, function () {
      const f = values(N + 3, 10, 3);
      for (const dtype of FLOATS) {
        const input = hostData(dtype, f);
        for (const options of [{}, { blockSize: 64 }, { stochastic: { seed: 12345 } }, { stochastic: { seed: 2n ** 64n - 1n }, blockSize: 32 }]) {
          const what = `${format} ${dtype} ${JSON.stringify(options, (k, v) => (typeof v === 'bigint' ? String(v) : v))}`;
          const o = { format, ...options };
          const host = c.quantize(input, { ...o, dtype: dtype === 'float32' ? undefined : dtype });
          const d = c.quantize(view(dtype, input), o);
          assert.equal(d.bytes.dtype, 'uint8');
          assert.deepEqual([d.format, d.blockSize, d.count], [host.format, host.blockSize, host.count]);
          assert.deepEqual(d.bytes.copyTo(), host.bytes, `${what}: bytes`);
          live.push(d.bytes);
          for (const out of FLOATS) {
            const expected = c.dequantize(host, { dtype: out });
            const back = c.dequantize(d, { dtype: out });
            live.push(back);
            assert.equal(back.dtype, out);
            assert.deepEqual(back.copyTo(), expected, `${what}: dequantized to ${out}`);
          }
        }
      }
      // Error feedback over three rounds, into an output view at a 4-byte offset.
      const hostResidual = new Float32Array(N + 3);
      const residual = view('float32', hostResidual, 1);
      const size = c.quantizedSize(N + 3, { format });
      const out = dev('uint8', size + 8).fill(0).subarray(4, 4 + size);
      for (let round = 0; round < 3; round++) {
        const host = c.quantize(f, { format, errorFeedback: hostResidual, stochastic: { seed: round } });
        const d = c.quantize(view('float32', f, 2), { format, errorFeedback: residual, stochastic: { seed: round }, output: out });
        assert.equal(d.bytes, out);
        assert.deepEqual(out.copyTo(), host.bytes, `round ${round}: bytes`);
        assert.deepEqual(residual.copyTo(), hostResidual, `round ${round}: residual`);
        const into = view('float32', new Float32Array(N + 3), 1);
        assert.equal(c.dequantize(d, { output: into }), into);
        assert.deepEqual(into.copyTo(), c.dequantize(host));
      }
    });
  }

  it('empty buffers are no-ops', function () {
    const e = dev('float32', 0);
    c.adamwStep(e, dev('float32', 0), dev('float32', 0), dev('float32', 0), { step: 1 });
    c.scale(2, e);
    const q = c.quantize(e);
    live.push(q.bytes);
    assert.equal(q.bytes.length, 0);
  });

  it('host arrays and DeviceBuffers cannot be mixed in one call: a TypeError naming the argument', function () {
    const d = dev('float32', 4).fill(1);
    const h = new Float32Array(4);
    const mixed = (name) => isCode('INVALID_ARGUMENT', new RegExp(`^${name.replace('.', '\\.')}: expected a DeviceBuffer like [\\w.]+ \\(host arrays and DeviceBuffers cannot be mixed`));
    assert.throws(() => c.axpy(1, d, h), (e) => e instanceof TypeError && mixed('y')(e));
    assert.throws(() => c.axpy(1, h, d), mixed('x'));
    assert.throws(() => c.adamwStep(d, d.subarray(0), h, d, { step: 1 }), mixed('expAvg'));
    assert.throws(() => c.nesterovStep(h, d, h, { lr: 1, momentum: 0 }), mixed('param'));
    assert.throws(() => c.cast(d, new Uint16Array(4), { outputDtype: 'float16' }), mixed('output'));
    assert.throws(() => c.quantize(d, { output: new Uint8Array(c.quantizedSize(4)) }), mixed('options.output'));
    assert.throws(() => c.quantize(h, { errorFeedback: d }), mixed('input'));
    const q = c.quantize(d);
    live.push(q.bytes);
    assert.throws(() => c.dequantize(q, { output: new Float32Array(4) }), mixed('options.output'));
  });

  it('a freed buffer, or a view of one, is DESTROYED', function () {
    const a = new DeviceBuffer('float32', 8).fill(1);
    const y = dev('float32', 8).fill(0);
    const v = a.subarray(0, 8);
    a.free();
    const destroyed = (name) => (e) => e instanceof CollectiveError && isCode('DESTROYED', new RegExp(`${name}: the DeviceBuffer was freed`))(e);
    assert.throws(() => c.axpy(1, a, y), destroyed('x'));
    assert.throws(() => c.axpy(1, y, v), destroyed('y'));
    assert.throws(() => c.scale(2, v), destroyed('x'));
    assert.throws(() => c.quantize(a), destroyed('input'));
    assert.throws(() => c.cast(y, a), destroyed('output'));
  });

  it('wrong dtypes, lengths, devices and option dtypes are rejected, naming the argument', function () {
    const f = dev('float32', 8).fill(1);
    const h = dev('float16', 8).fill(1);
    const i = dev('int32', 8).fill(1);
    assert.throws(() => c.scale(2, h), (e) => e instanceof TypeError && isCode('INVALID_ARGUMENT', /^x: expected a DeviceBuffer of float32, got "a DeviceBuffer of float16"/)(e));
    assert.throws(() => c.adamwStep(f, dev('float32', 8), h, dev('float32', 8), { step: 1 }), isCode('INVALID_ARGUMENT', /^expAvg: expected a DeviceBuffer of float32/));
    assert.throws(() => c.axpy(1, f, dev('float32', 7)), (e) => e instanceof RangeError && isCode('INVALID_ARGUMENT', /^y: expected a DeviceBuffer of 8 elements, got 7/)(e));
    assert.throws(() => c.cast(i, f), isCode('INVALID_ARGUMENT', /^input: expected a DeviceBuffer of float32, float16, bfloat16/));
    assert.throws(() => c.cast(f, dev('bfloat16', 9)), isCode('INVALID_ARGUMENT', /^output: expected a DeviceBuffer of 8 elements/));
    assert.throws(() => c.cast(f, h, { outputDtype: 'bfloat16' }), isCode('INVALID_ARGUMENT', /^options\.outputDtype: expected the DeviceBuffer's dtype \(float16\)/));
    assert.throws(() => c.quantize(i), isCode('INVALID_ARGUMENT', /^input: expected a DeviceBuffer of float32, float16, bfloat16/));
    assert.throws(() => c.quantize(f, { dtype: 'float16' }), isCode('INVALID_ARGUMENT', /^options\.dtype/));
    assert.throws(() => c.quantize(f, { output: dev('int8', c.quantizedSize(8)) }), isCode('INVALID_ARGUMENT', /^options\.output: expected a DeviceBuffer of uint8/));
    assert.throws(() => c.quantize(f, { output: dev('uint8', 3) }), isCode('INVALID_ARGUMENT', /^options\.output: expected a DeviceBuffer of 12 bytes/));
    assert.throws(() => c.quantize(f, { errorFeedback: h }), isCode('INVALID_ARGUMENT', /^options\.errorFeedback: expected a DeviceBuffer of float32/));
    assert.throws(() => c.quantize(f, { errorFeedback: dev('float32', 4) }), isCode('INVALID_ARGUMENT', /^options\.errorFeedback: expected a DeviceBuffer of 8 elements/));
    const q = c.quantize(f);
    live.push(q.bytes);
    assert.throws(() => c.dequantize({ ...q, count: 9 }), isCode('INVALID_ARGUMENT', /^q\.bytes: expected 16 bytes/));
    assert.throws(() => c.dequantize(q, { output: i }), isCode('INVALID_ARGUMENT', /^options\.output: expected a DeviceBuffer of float32/));
    assert.throws(() => c.dequantize(q, { dtype: 'int8' }), isCode('INVALID_ARGUMENT', /^options\.dtype/));
    if ((backends().cuda.devices ?? 1) > 1) {
      const other = new DeviceBuffer('float32', 8, { device: 1 });
      live.push(other);
      assert.throws(() => c.axpy(1, f, other), isCode('INVALID_ARGUMENT', /^y: expected a DeviceBuffer on device 0 \(as x\)/));
    }
  });

  it('overlapping views and misaligned quantized bytes are rejected by the addon', function () {
    const b = dev('float32', 16).fill(1);
    const overlap = (name, other) => (e) => e instanceof RangeError && isCode('INVALID_ARGUMENT', new RegExp(`^${name}: expected memory apart from ${other}`))(e);
    assert.throws(() => c.axpy(1, b.subarray(0, 8), b.subarray(4, 12)), /partly overlapping|memory apart/);
    assert.throws(() => c.adamwStep(b.subarray(0, 4), b.subarray(4, 8), b.subarray(8, 12), b.subarray(2, 6), { step: 1 }), overlap('expAvgSq', 'param'));
    assert.throws(() => c.nesterovStep(b.subarray(0, 4), b.subarray(0, 4), b.subarray(8, 12), { lr: 1, momentum: 0 }), overlap('delta', 'param'));
    const f16 = dev('float16', 16);
    const half = new DeviceBuffer('float16', 8);
    live.push(half);
    assert.throws(() => c.cast(f16.subarray(0, 8), f16.subarray(4, 12)), overlap('output', 'input'));
    c.cast(f16.subarray(0, 8), f16.subarray(8, 16)); // adjacent is fine
    const bytes = dev('uint8', 64);
    const x = dev('float32', 8).fill(1);
    assert.throws(() => c.quantize(x, { output: bytes.subarray(1, 13) }), isCode('INVALID_ARGUMENT', /^options\.output: expected a DeviceBuffer starting at a multiple of 4 bytes/));
    const q = c.quantize(x, { output: bytes.subarray(4, 16) });
    assert.throws(() => c.dequantize({ ...q, bytes: bytes.subarray(2, 14) }), isCode('INVALID_ARGUMENT', /^q\.bytes: expected a DeviceBuffer starting at a multiple of 4 bytes/));
    const r = dev('float32', 8);
    assert.throws(() => c.quantize(x, { errorFeedback: x }), overlap('residual', 'input'));
    live.push(c.quantize(x, { errorFeedback: r.fill(0) }).bytes);
  });
});
