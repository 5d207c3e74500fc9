'use strict';
// Quantized collectives: the codecs in one process (error bounds, exact grid
// values, odd sizes, extreme magnitudes, NaN/Inf, half inputs, stochastic
// rounding, error feedback, argument checks), then the collectives on 1-4
// real ranks (test/workers/quantized.js) against a float64 reference.

const assert = require('node:assert/strict');
const { refuses: refusesArgument } = require('./helpers/refuses');
const { spawnSync } = require('node:child_process');
const { quantize, dequantize, quantizedSize, DEFAULT_BLOCK_SIZE, QUANT_FORMATS } = require('../dist');
const { MAX, elementBound, fp8Grid, random, blockAbsmax } = require('./helpers/quant-reference');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, ranksOf, launched } = require('./helpers/cases');

// The cases of test/workers/quantized.js, the same on every rank.
const QUANTIZED_CASES = [
  ...['int8', 'int4', 'fp8e4m3', 'fp8e5m2'].flatMap((f) => [`allToAll ${f}`, `reduceScatter ${f}`, `allGather ${f}`, `allReduce ${f} sum`, `allReduce ${f} avg`]),
  'allReduce of 2 elements',
  'allReduce bfloat16',
  'error feedback',
];

const ULP = 2 ** -22; // relative slack for float32 rounding of x / scale and q * scale

function mixed(n, seed, magnitude = 1) {
  const r = random(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (r() * 2 - 1) * magnitude * 2 ** Math.floor(r() * 6 - 3);
  return x;
}

/** Checks every element of x against its dequantized value and the block's scale. */
function checkBound(format, x, q, y) {
  const absmax = blockAbsmax(x, 0, x.length, q.blockSize);
  for (let i = 0; i < x.length; i++) {
    const b = Math.floor(i / q.blockSize);
    const s = q.scales[b];
    // (Near FLT_MAX the scale cannot step up: the largest element may saturate by an ulp.)
    assert.ok(s * MAX[format] >= absmax[b] * (1 - 2 ** -23), `block ${b}: scale ${s} × ${MAX[format]} < absmax ${absmax[b]}`);
    assert.ok(s <= (absmax[b] / MAX[format]) * (1 + 2 ** -20) + 2 ** -149, `block ${b}: scale ${s} too large`);
    const bound = elementBound(format, x[i], s) * (1 + ULP) + Math.abs(x[i]) * 2 ** -23;
    const err = Math.abs(x[i] - y[i]);
    assert.ok(err <= bound, `${format} element ${i}: |${x[i]} - ${y[i]}| = ${err} > ${bound} (scale ${s})`);
  }
}

describe('35 quantized', function () {
  describe('codecs', function () {
    it('default block size is the native one and sizes follow FORMAT.md', function () {
      assert.equal(DEFAULT_BLOCK_SIZE, require('../dist/core/loader').loadAddon().quant.defaultBlockSize);
      // 1000 elements, blocks of 64: 16 scales (64 bytes) + payload, padded to 4.
      assert.equal(quantizedSize(1000, { format: 'int8', blockSize: 64 }), 64 + 1000);
      assert.equal(quantizedSize(1001, { format: 'int4', blockSize: 64 }), 64 + 504);
      assert.equal(quantizedSize(1001, { format: 'fp8e4m3', blockSize: 64 }), 64 + 1004);
      assert.equal(quantizedSize(0, { format: 'int8' }), 0);
    });

    for (const format of QUANT_FORMATS) {
      it(`${format}: every element within its bound, odd sizes and several block sizes`, function () {
        for (const [n, blockSize] of [[1, 8], [37, 8], [1000, 64], [4099, 256], [3000, 1024]]) {
          const x = mixed(n, n + blockSize);
          const q = quantize(x, { format, blockSize });
          assert.equal(q.bytes.length, quantizedSize(n, { format, blockSize }));
          checkBound(format, x, q, dequantize(q));
        }
      });
    }

    it('values on the grid come back exactly', function () {
      for (const format of ['int8', 'int4']) {
        const m = MAX[format];
        for (const e of [-140, -20, 0, 7, 100]) {
          const x = new Float32Array(2 * m + 1).map((_, i) => (i - m) * 2 ** e);
          const y = dequantize(quantize(x, { format, blockSize: 8 * Math.ceil(x.length / 8) }));
          assert.deepEqual(Array.from(y), Array.from(x), `${format} at 2^${e}`);
        }
      }
      for (const format of ['fp8e4m3', 'fp8e5m2']) {
        for (const e of [-3, 0, 5]) {
          const x = Float32Array.from(fp8Grid(format), (v) => v * 2 ** e);
          const y = dequantize(quantize(x, { format, blockSize: 8 * Math.ceil(x.length / 8) }));
          assert.deepEqual(Array.from(y), Array.from(x), `${format} grid × 2^${e}`);
        }
      }
    });

    it('an all-zero block stays zero with scale 0', function () {
      for (const format of QUANT_FORMATS) {
        const x = mixed(64, 3);
        x.fill(0, 8, 16);
        const q = quantize(x, { format, blockSize: 8 });
        assert.equal(q.scales[1], 0);
        assert.deepEqual(Array.from(dequantize(q).subarray(8, 16)), new Array(8).fill(0));
      }
    });

    it('tiny and huge magnitudes stay within the bound and finite', function () {
      for (const format of QUANT_FORMATS) {
        for (const magnitude of [1e-44, 1e-40, 1e-30, 1e30, 3e38, 3.4028234663852886e38]) {
          const x = mixed(200, 11, 1).map((v) => Math.max(-3.4e38, Math.min(3.4e38, v * magnitude)));
          x[7] = Math.sign(x[7]) * magnitude; // the largest magnitude itself (FLT_MAX in the last case)
          const q = quantize(x, { format, blockSize: 16 });
          const y = dequantize(q);
          assert.ok(y.every(Number.isFinite), `${format} at ${magnitude}: non-finite output`);
          checkBound(format, x, q, y);
        }
      }
    });

    it('NaN and Inf make their block non-finite and leave other blocks alone', function () {
      for (const format of QUANT_FORMATS) {
        const x = mixed(32, 5);
        x[3] = NaN;
        x[9] = Infinity;
        x[20] = -Infinity;
        const q = quantize(x, { format, blockSize: 8 });
        const y = dequantize(q);
        assert.ok(Number.isNaN(q.scales[0]) && q.scales[1] === Infinity && q.scales[2] === Infinity);
        for (let i = 0; i < 8; i++) assert.ok(Number.isNaN(y[i]), `${format}: element ${i} of the NaN block`);
        assert.equal(y[9], Infinity);
        assert.equal(y[20], -Infinity);
        for (const i of [8, 10, 15, 16, 23]) assert.ok(Number.isNaN(y[i]), `${format}: element ${i} of an Inf block`);
        const tail = x.subarray(24);
        checkBound(format, tail, quantize(tail, { format, blockSize: 8 }), y.subarray(24));
      }
    });

    it('float16 and bfloat16 inputs quantize like their float32 values and come back in their dtype', function () {
      const x = mixed(300, 9);
      for (const dtype of ['float16', 'bfloat16']) {
        // Encode with the library's own round trip through float32 first: f16 and bf16 values.
        const h = new Uint16Array(x.length);
        const f = new Float32Array(x.length);
        const u = new Uint32Array(f.buffer);
        for (let i = 0; i < x.length; i++) {
          f[i] = x[i];
          h[i] = dtype === 'bfloat16' ? u[i] >>> 16 : toHalf(x[i]);
          f[i] = dtype === 'bfloat16' ? new Float32Array(new Uint32Array([h[i] << 16]).buffer)[0] : fromHalf(h[i]);
        }
        for (const format of QUANT_FORMATS) {
          const qh = quantize(h, { format, dtype, blockSize: 64 });
          const qf = quantize(f, { format, blockSize: 64 });
          assert.deepEqual(qh.bytes, qf.bytes, `${dtype} ${format}`);
          const back = dequantize(qh, { dtype });
          assert.ok(back instanceof Uint16Array && back.length === x.length);
        }
      }
    });

    it('stochastic rounding is reproducible from the seed and unbiased', function () {
      const x = new Float32Array(20000).fill(0.3);
      x[0] = 127; // scale 1: 0.3 lies between grid points 0 and 1
      const a = quantize(x, { format: 'int8', blockSize: 20000, stochastic: { seed: 42 } });
      const b = quantize(x, { format: 'int8', blockSize: 20000, stochastic: { seed: 42n } });
      const c = quantize(x, { format: 'int8', blockSize: 20000, stochastic: { seed: 43 } });
      assert.deepEqual(a.bytes, b.bytes);
      assert.notDeepEqual(a.bytes, c.bytes);
      const y = dequantize(a);
      let sum = 0;
      for (let i = 1; i < y.length; i++) sum += y[i];
      const mean = sum / (y.length - 1);
      assert.ok(Math.abs(mean - 0.3) < 0.02, `mean ${mean}, expected 0.3`);
      for (const format of QUANT_FORMATS) {
        const z = mixed(1000, 2);
        const q = quantize(z, { format, blockSize: 64, stochastic: { seed: 1 } });
        // One grid step either way: twice the nearest-rounding bound.
        const w = dequantize(q);
        for (let i = 0; i < z.length; i++) {
          const s = q.scales[Math.floor(i / 64)];
          assert.ok(Math.abs(z[i] - w[i]) <= 2 * elementBound(format, z[i], s) * (1 + ULP) + 1e-30, `${format} element ${i}`);
        }
      }
    });

    it('error feedback keeps the running sum of repeated quantizations within one step', function () {
      const x = mixed(512, 8);
      const residual = new Float32Array(x.length);
      const withEf = new Float64Array(x.length);
      const without = new Float64Array(x.length);
      const T = 100;
      for (let t = 0; t < T; t++) {
        const y = dequantize(quantize(x, { format: 'int4', blockSize: 64, errorFeedback: residual }));
        const z = dequantize(quantize(x, { format: 'int4', blockSize: 64 }));
        for (let i = 0; i < x.length; i++) {
          withEf[i] += y[i];
          without[i] += z[i];
        }
      }
      const absmax = blockAbsmax(x, 0, x.length, 64);
      let worstEf = 0;
      let worstPlain = 0;
      for (let i = 0; i < x.length; i++) {
        const step = absmax[Math.floor(i / 64)] / 7;
        worstEf = Math.max(worstEf, Math.abs(withEf[i] - T * x[i]) / step);
        worstPlain = Math.max(worstPlain, Math.abs(without[i] - T * x[i]) / step);
      }
      assert.ok(worstEf <= 1, `with error feedback: ${worstEf} steps`);
      assert.ok(worstPlain > 5, `without error feedback: only ${worstPlain} steps`);
    });

    it('the AVX2 and baseline builds of the loops produce the same bytes', function () {
      const script = `
        const { quantize, dequantize } = require(${JSON.stringify(require.resolve('../dist'))});
        const { createHash } = require('node:crypto');
        const h = createHash('sha256');
        const x = new Float32Array(5003).map((_, i) => Math.sin(i) * 2 ** ((i % 13) - 6));
        for (const format of ['int8', 'int4', 'fp8e4m3', 'fp8e5m2']) for (const stochastic of [undefined, { seed: 5 }]) {
          const r = new Float32Array(x.length);
          const q = quantize(x, { format, blockSize: 64, stochastic, errorFeedback: r });
          h.update(q.bytes); h.update(new Uint8Array(r.buffer)); h.update(new Uint8Array(dequantize(q).buffer));
        }
        console.log(require(${JSON.stringify(require.resolve('../dist/core/loader'))}).loadAddon().quant.instructionSet, h.digest('hex'));`;
      const run = (env) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
      const native = run({});
      const base = run({ COLLECTIVES_CODEC_ISA: 'baseline' });
      assert.equal(native.status, 0, native.stderr);
      assert.equal(base.status, 0, base.stderr);
      const [isaN, hashN] = native.stdout.trim().split(' ');
      const [isaB, hashB] = base.stdout.trim().split(' ');
      assert.equal(isaB, 'baseline');
      if (isaN === 'baseline') this.skip();
      assert.equal(hashN, hashB);
    });

    it('refuses bad arguments with INVALID_ARGUMENT', function () {
      const x = new Float32Array(16);
      const bad = [
        () => quantize(x, { format: 'int2' }),
        () => quantize(x, { blockSize: 12 }),
        () => quantize(x, { blockSize: 4 }),
        () => quantize(new Int32Array(16)),
        () => quantize(x, { errorFeedback: new Float32Array(15) }),
        () => quantize(x, { errorFeedback: x }),
        () => quantize(x, { stochastic: { seed: -1 } }),
        () => quantize(x, { output: new Uint8Array(3) }),
        () => quantize(x, { colour: 'red' }),
        () => dequantize({ format: 'int8', count: 16, bytes: new Uint8Array(10) }),
        () => dequantize(quantize(x), { output: new Float32Array(3) }),
      ];
      for (const f of bad) {
        assert.throws(f, (e) => (e instanceof TypeError || e instanceof RangeError) && e.code === 'INVALID_ARGUMENT', String(f));
      }
    });
  });

  describe('argument checks of the quantized collectives', function () {
    const { init } = require('../dist');
    const os = require('node:os');
    const fs = require('node:fs');
    const path = require('node:path');
    const { FOREIGN } = require('./helpers/launch');
    let comm;
    let native;
    let dir;
    let savedEnv;

    before(async function () {
      savedEnv = { ...process.env };
      for (const k of FOREIGN) delete process.env[k];
      comm = await init({ worldSize: 1 });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quant-'));
      const addon = require('../dist/core/loader').loadAddon();
      native = await addon.connect({ rank: 0, size: 1, timeoutMs: 10000, prefix: 'q', storePath: dir });
    });

    after(async function () {
      if (comm) await comm.destroy();
      if (native) native.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      for (const k of FOREIGN) delete process.env[k];
      Object.assign(process.env, savedEnv);
    });

    function refuses(call, Kind, name) {
      refusesArgument(call, Kind, name);
      assert.equal(comm.pending, 0);
    }

    it('refuses bad calls synchronously, naming the argument', function () {
      const x = new Float32Array(8);
      refuses(() => comm.allReduceQuantized(new Int32Array(8)), TypeError, 'buffer');
      refuses(() => comm.allReduceQuantized(x, { format: 'int3' }), TypeError, 'options.format');
      refuses(() => comm.allReduceQuantized(x, { op: 'max' }), TypeError, 'options.op');
      refuses(() => comm.allReduceQuantized(x, { blockSize: 100 }), RangeError, 'options.blockSize');
      refuses(() => comm.allReduceQuantized(x, { errorFeedback: new Float32Array(8) }), RangeError, 'options.errorFeedback');
      refuses(() => comm.allReduceQuantized(x, { errorFeedback: new Float64Array(16) }), TypeError, 'options.errorFeedback');
      refuses(() => comm.allReduceQuantized(x, { output: new Float32Array(7) }), RangeError, 'options.output');
      refuses(() => comm.allReduceQuantized(x, { stochastic: { seed: 1.5 } }), TypeError, 'options.stochastic.seed');
      refuses(() => comm.reduceScatterQuantized(x, new Float32Array(7)), RangeError, 'input');
      refuses(() => comm.allGatherQuantized(x, new Float32Array(7)), RangeError, 'output');
      refuses(() => comm.allToAllQuantized(x, new Float32Array(8), { output: x }), TypeError, 'options.output');
      refuses(() => comm.allGatherQuantized(x, new Float32Array(8), { errorFeedback: x }), RangeError, 'options.errorFeedback');
    });

    it('the native backstop refuses what the TypeScript layer would have', function () {
      const x = new Float32Array(8);
      const y = new Float32Array(8);
      const ok = [0, 0, 256, 0, null, null, 1000];
      const call = (input, output, ...args) => native.allReduceQuantized(input, output, ...args);
      const cases = [
        [() => call(x, y, 4, 0, 256, 0, null, null, 1000), TypeError, 'dtype'],
        [() => call(x, y, 0, 9, 256, 0, null, null, 1000), RangeError, 'format'],
        [() => call(x, y, 0, 0, 12, 0, null, null, 1000), RangeError, 'blockSize'],
        [() => call(x, y, 0, 0, 256, 3, null, null, 1000), RangeError, 'op'],
        [() => call(x, y, 0, 0, 256, 0, new Float32Array(3), null, 1000), RangeError, 'errorFeedback'],
        [() => call(x, y, 0, 0, 256, 0, x, null, 1000), RangeError, 'errorFeedback'],
        [() => call(x, y, 0, 0, 256, 0, null, -1, 1000), RangeError, 'seed'],
        [() => call(x, new Float32Array(7), ...ok), RangeError, 'output'],
        [() => native.reduceScatterQuantized(x, new Float32Array(7), ...ok), RangeError, 'input'],
        [() => require('../dist/core/loader').loadAddon().quant.quantize(x, 0, 0, 256, new Uint8Array(3), null, null), RangeError, 'output'],
      ];
      for (const [f, Kind, name] of cases) {
        assert.throws(f, (e) => e instanceof Kind && e.code === 'INVALID_ARGUMENT' && e.message.startsWith(`${name}:`), `${Kind.name} naming ${name}: ${f}`);
      }
    });
  });

  for (const worldSize of [1, 2, 3, 4]) {
    it(`the quantized collectives match a float64 reference and agree bit for bit on ${worldSize} rank${worldSize > 1 ? 's' : ''}`, async function () {
      this.timeout(60000);
      const res = await launchWorker('quantized.js', { nproc: worldSize, killAfterMs: 50000 });
      const cases = assertCases(res.stdout, ranksOf(worldSize), QUANTIZED_CASES, launched(res));
      assertSucceeded(res, `quantized collectives on ${worldSize} ranks`);
      const hashes = new Map();
      for (const [rank, list] of cases) {
        for (const c of list.filter((x) => x.hash !== undefined)) {
          if (!hashes.has(c.case)) hashes.set(c.case, new Map());
          hashes.get(c.case).set(rank, c.hash);
        }
      }
      assert.ok(hashes.size > 0, `no output hashes:\n${res.stdout}`);
      for (const [name, byRank] of hashes) {
        assert.equal(byRank.size, worldSize, `${name}: hashes from ${byRank.size} ranks`);
        assert.equal(new Set(byRank.values()).size, 1, `${name}: ranks disagree: ${[...byRank].join(' ')}`);
      }
      const ef = cases.get(0).find((c) => c.case === 'error feedback').steps;
      this.test.title += ` (error feedback: ${ef.ef} steps, without: ${ef.plain})`;
    });
  }
});

function toHalf(v) {
  // float32 -> binary16 bits, round to nearest even, normal range only (the test data).
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a < 0x38800000) {
    const m = Math.round(Math.abs(f[0]) * 2 ** 24); // subnormal half (ties are rare in this data)
    return sign | m;
  }
  let h = (((a >>> 23) - 112) << 10) | ((a >>> 13) & 0x3ff);
  const rest = a & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

function fromHalf(h) {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

