'use strict';
// One rank of test/35.quantized.test.js: every quantized collective and
// format against a float64 reference computed here, with the error bound the
// format implies; the hash of an output goes in its case's line so the test
// can check that the ranks agree bit for bit. Then error feedback over 100
// all-reduces. One case per collective × format (× op for all-reduce).
// QUANTIZED_CASES in test/35.quantized.test.js lists them.

const { createHash } = require('node:crypto');
const { init } = require('../../dist');
const { MAX, elementBound, random, blockAbsmax } = require('../helpers/quant-reference');
const { Checker, run, settle } = require('../helpers/worker');

const FORMATS = ['int8', 'int4', 'fp8e4m3', 'fp8e5m2'];
const B = 64;
const SLACK = 1 + 2 ** -20;

function data(rank, n, salt) {
  const r = random(1000 * rank + salt);
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * 2 ** Math.floor(r() * 4 - 2));
}

function hash(a) {
  return createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex').slice(0, 16);
}

/** Per-element bound of quantizing x[start, start + n) in blocks from `start`. */
function bounds(format, x, start, n) {
  const am = blockAbsmax(x, start, n, B);
  return Array.from({ length: n }, (_, i) => elementBound(format, x[start + i], am[Math.floor(i / B)] / MAX[format]) * SLACK);
}

run(async () => {
  const comm = await init();
  const { rank, size } = comm;
  const check = new Checker(rank);
  const all = (n, salt) => Array.from({ length: size }, (_, r) => data(r, n, salt));
  const within = (name, got, want, bound) => {
    let bad = 0;
    let first = '';
    for (let i = 0; i < want.length; i++) {
      if (!(Math.abs(got[i] - want[i]) <= bound[i])) {
        if (bad++ === 0) first = `element ${i}: ${got[i]} vs ${want[i]} (bound ${bound[i]})`;
      }
    }
    check.ok(name, bad === 0, `${bad} elements out of bound, first ${first}`);
  };

  for (const format of FORMATS) {
    const c = 37; // per-rank elements: not a multiple of the block size
    // all-to-all: chunk r of rank k's input lands in chunk k of rank r's output.
    {
      check.begin(`allToAll ${format}`);
      const xs = all(c * size, 1);
      const out = new Float32Array(c * size);
      await settle('allToAll', comm.allToAllQuantized(Float32Array.from(xs[rank]), out, { format, blockSize: B }));
      for (let k = 0; k < size; k++) {
        const b = bounds(format, xs[k], rank * c, c);
        within(`allToAll ${format} from ${k}`, out.subarray(k * c, (k + 1) * c), xs[k].subarray(rank * c, (rank + 1) * c), b);
      }
    }
    // reduce-scatter: one quantization per element.
    {
      check.begin(`reduceScatter ${format}`);
      const xs = all(c * size, 2);
      const out = new Float32Array(c);
      await settle('reduceScatter', comm.reduceScatterQuantized(Float32Array.from(xs[rank]), out, { format, blockSize: B }));
      const want = new Float64Array(c);
      const bound = new Float64Array(c);
      for (let k = 0; k < size; k++) {
        const b = bounds(format, xs[k], rank * c, c);
        for (let i = 0; i < c; i++) {
          want[i] += xs[k][rank * c + i];
          bound[i] += b[i];
        }
      }
      within(`reduceScatter ${format}`, out, want, bound);
    }
    // all-gather: every rank's shard, and the same bits everywhere.
    {
      check.begin(`allGather ${format}`);
      const xs = all(c, 3);
      const out = new Float32Array(c * size);
      await settle('allGather', comm.allGatherQuantized(Float32Array.from(xs[rank]), out, { format, blockSize: B }));
      for (let k = 0; k < size; k++) within(`allGather ${format} from ${k}`, out.subarray(k * c, (k + 1) * c), xs[k], bounds(format, xs[k], 0, c));
      check.attach('hash', hash(out));
    }
    // all-reduce over a length not divisible by the world size, avg and sum,
    // nearest and stochastic rounding.
    for (const [op, stochastic] of [['sum', undefined], ['avg', { seed: 9 }]]) {
      check.begin(`allReduce ${format} ${op}`);
      const n = 301;
      const shard = Math.ceil(n / size);
      const xs = all(n, 4);
      const buf = Float32Array.from(xs[rank]);
      await settle('allReduce', comm.allReduceQuantized(buf, { format, blockSize: B, op, stochastic }));
      const want = new Float64Array(n);
      const e1 = new Float64Array(n);
      for (let k = 0; k < size; k++) {
        for (let s = 0; s * shard < n; s++) {
          const len = Math.min(shard, n - s * shard);
          const b = bounds(format, xs[k], s * shard, len);
          for (let i = 0; i < len; i++) e1[s * shard + i] += b[i] * (stochastic ? 2 : 1);
        }
        for (let i = 0; i < n; i++) want[i] += xs[k][i];
      }
      const div = op === 'avg' ? size : 1;
      // The second quantization sees the reduced values, off by at most e1.
      const reduced = Float64Array.from(want, (v, i) => (Math.abs(v) + e1[i]) / div);
      const bound = new Float64Array(n);
      for (let s = 0; s * shard < n; s++) {
        const len = Math.min(shard, n - s * shard);
        const b = bounds(format, reduced, s * shard, len);
        for (let i = 0; i < len; i++) bound[s * shard + i] = e1[s * shard + i] / div + b[i] * (stochastic ? 2 : 1);
      }
      within(`allReduce ${format} ${op}`, buf, want.map((v) => v / div), bound);
      check.attach('hash', hash(buf));
    }
  }

  // Fewer elements than ranks: the last shards are empty.
  {
    check.begin('allReduce of 2 elements');
    const x = Float32Array.of(rank + 0.5, -rank);
    await settle('allReduce tiny', comm.allReduceQuantized(x, { format: 'int8' }));
    const want = [size * size / 2, -(size * (size - 1)) / 2];
    within('allReduce of 2 elements', x, want, want.map((v) => Math.abs(v) / 100 + 1e-6));
    check.attach('hash', hash(x));
  }

  // bfloat16 in, bfloat16 out: the same bits on every rank.
  {
    check.begin('allReduce bfloat16');
    const x = new Uint16Array(200).map((_, i) => 0x3f80 + ((i * 7 + rank * 3) % 120));
    await settle('allReduce bf16', comm.allReduceQuantized(x, { dtype: 'bfloat16', format: 'int8' }));
    check.attach('hash', hash(x));
  }

  // Error feedback: 100 all-reduces of the same vector (the same on every
  // rank); the running sum stays within one step of the output's grid.
  {
    check.begin('error feedback');
    const n = 2048;
    const v = Float32Array.from(data(0, n, 5));
    const T = 100;
    const sums = { ef: new Float64Array(n), plain: new Float64Array(n) };
    const residual = new Float32Array(n + Math.ceil(n / size));
    for (let t = 0; t < T; t++) {
      const a = Float32Array.from(v);
      await settle('allReduce ef', comm.allReduceQuantized(a, { format: 'int8', blockSize: B, errorFeedback: residual }));
      const b = Float32Array.from(v);
      await settle('allReduce plain', comm.allReduceQuantized(b, { format: 'int8', blockSize: B }));
      for (let i = 0; i < n; i++) {
        sums.ef[i] += a[i];
        sums.plain[i] += b[i];
      }
    }
    const shard = Math.ceil(n / size);
    const sv = Float64Array.from(v, (x) => x * size);
    const step = new Float64Array(n);
    for (let s = 0; s * shard < n; s++) {
      const len = Math.min(shard, n - s * shard);
      blockAbsmax(sv, s * shard, len, B).forEach((m, j) => step.fill(m / 127, s * shard + j * B, s * shard + Math.min(len, (j + 1) * B)));
    }
    const worst = (sum) => Math.max(...Array.from(sum, (x, i) => Math.abs(x - T * sv[i]) / step[i]));
    const ef = worst(sums.ef);
    const plain = worst(sums.plain);
    check.ok('error feedback', ef <= 1.0001, `with feedback the sum is ${ef} steps off`);
    check.ok('no error feedback drifts', plain > 2, `without feedback only ${plain} steps off`);
    check.attach('steps', { ef: ef.toFixed(3), plain: plain.toFixed(1) });
  }

  check.report();
  await comm.destroy();
});
