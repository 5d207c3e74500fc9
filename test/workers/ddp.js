'use strict';
// One rank of test/96.ddp.test.js: DataParallel against values computed here without it:
// one process's training on the global batch, exact averages in float64, byte counts from the
// formulas. Runs under COLLECTIVES_DEBUG=detail, so ranks that issued their buckets in
// different orders would fail with MISMATCH instead of averaging the wrong buffers.

const { init } = require('../../dist');
const { ParameterSet, DataParallel, AdamW, SGD, TrainingError } = require('../../dist/training');
const { Checker, run } = require('../helpers/worker');
const { rng } = require('../helpers/rng');

// A small MLP (in → hidden tanh → out, softmax cross-entropy) written out in float32 loops, so
// the reference needs nothing from the library.
const IN = 12;
const HIDDEN = 16;
const OUT = 5;
const SPECS = [
  { name: 'fc1.weight', shape: [HIDDEN, IN] },
  { name: 'fc1.bias', shape: [HIDDEN] },
  { name: 'fc2.weight', shape: [OUT, HIDDEN] },
  { name: 'fc2.bias', shape: [OUT] },
];

/** Sample i of the data set: a fixed input and label, the same on every rank. */
function sample(i) {
  const r = rng(1000 + i);
  const x = new Float32Array(IN);
  for (let k = 0; k < IN; k++) x[k] = r() * 2 - 1;
  return { x, label: i % OUT };
}

function initialParams(set, seed) {
  const r = rng(seed);
  for (const t of set.tensors) {
    const v = set.view(t.name);
    for (let k = 0; k < v.length; k++) v[k] = (r() - 0.5) * 0.5;
  }
}

/**
 * Adds scale × the gradient of the loss over `samples` to `grads` (views by name), for the
 * parameters `p` (views by name).
 */
function accumulateGradients(p, grads, samples, scale) {
  const h = new Float32Array(HIDDEN);
  const o = new Float32Array(OUT);
  const dOut = new Float32Array(OUT);
  const dH = new Float32Array(HIDDEN);
  for (const { x, label } of samples) {
    for (let j = 0; j < HIDDEN; j++) {
      let a = p['fc1.bias'][j];
      for (let k = 0; k < IN; k++) a += p['fc1.weight'][j * IN + k] * x[k];
      h[j] = Math.tanh(a);
    }
    let max = -Infinity;
    for (let c = 0; c < OUT; c++) {
      let a = p['fc2.bias'][c];
      for (let j = 0; j < HIDDEN; j++) a += p['fc2.weight'][c * HIDDEN + j] * h[j];
      o[c] = a;
      max = Math.max(max, a);
    }
    let z = 0;
    for (let c = 0; c < OUT; c++) z += Math.exp(o[c] - max);
    for (let c = 0; c < OUT; c++) dOut[c] = (Math.exp(o[c] - max) / z - (c === label ? 1 : 0)) * scale;
    dH.fill(0);
    for (let c = 0; c < OUT; c++) {
      grads['fc2.bias'][c] += dOut[c];
      for (let j = 0; j < HIDDEN; j++) {
        grads['fc2.weight'][c * HIDDEN + j] += dOut[c] * h[j];
        dH[j] += dOut[c] * p['fc2.weight'][c * HIDDEN + j];
      }
    }
    for (let j = 0; j < HIDDEN; j++) {
      const d = dH[j] * (1 - h[j] * h[j]);
      grads['fc1.bias'][j] += d;
      for (let k = 0; k < IN; k++) grads['fc1.weight'][j * IN + k] += d * x[k];
    }
  }
}

const views = (set, grad) => Object.fromEntries(set.tensors.map((t) => [t.name, grad ? set.gradView(t.name) : set.view(t.name)]));

function maxRelativeDifference(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1e-3, Math.abs(b[i])));
  return worst;
}

/** Whether every rank holds the same bytes in `a`. */
async function sameOnEveryRank(comm, a) {
  const all = new Float32Array(a.length * comm.size);
  await comm.allGather(a, all);
  const bytes = new Uint32Array(all.buffer);
  const n = a.length;
  for (let r = 1; r < comm.size; r++) for (let i = 0; i < n; i++) if (bytes[r * n + i] !== bytes[i]) return false;
  return true;
}

const STEPS = 20;
const BATCH = 4;
// float32 gradients summed in another order (per rank, then averaged) than the reference's
// (one sum over the global batch) differ in the last bits; 20 steps of a smooth model keep that
// well within 1e-4 relative. SGD is used where the comparison must also catch a wrong scale
// (AdamW's update hardly depends on the gradient's scale).
const TOLERANCE = 1e-4;
const sgd = (set) => new SGD(set, { lr: 0.5, momentum: 0.9 });
const adamw = (set) => new AdamW(set, { lr: 1e-2 });

async function trainAgainstReference(comm, check, accumulate, makeOptimizer) {
  const { rank, size } = comm;
  const ddpSet = new ParameterSet(SPECS);
  // Only rank 0's start counts: DataParallel broadcasts it.
  initialParams(ddpSet, 7 + rank);
  const dp = await DataParallel.create(comm, ddpSet, { bucketCapMB: 40 / 2 ** 20, firstBucketCapMB: 200 / 2 ** 20 });
  check.ok('several buckets', dp.buckets.length >= 3, `${dp.buckets.length} buckets`);
  const ddpOpt = makeOptimizer(ddpSet);
  const refSet = new ParameterSet(SPECS);
  initialParams(refSet, 7);
  const refOpt = makeOptimizer(refSet);
  const p = views(ddpSet, false);
  const g = views(ddpSet, true);
  const rp = views(refSet, false);
  const rg = views(refSet, true);
  for (let step = 0; step < STEPS; step++) {
    const global = [];
    for (let i = 0; i < BATCH * size; i++) global.push(sample(step * BATCH * size + i));
    const mine = global.slice(rank * BATCH, (rank + 1) * BATCH);
    ddpSet.zeroGrad();
    if (accumulate) {
      // Two micro-batches, the first without synchronizing (torch's no_sync()).
      await dp.noSync(() => {
        accumulateGradients(p, g, mine.slice(0, BATCH / 2), 1 / BATCH);
        dp.gradsReady();
      });
      accumulateGradients(p, g, mine.slice(BATCH / 2), 1 / BATCH);
    } else {
      accumulateGradients(p, g, mine, 1 / BATCH);
    }
    dp.gradsReady();
    await dp.synchronizeAndStep(ddpOpt);
    refSet.zeroGrad();
    accumulateGradients(rp, rg, global, 1 / global.length);
    refOpt.step();
  }
  const d = maxRelativeDifference(ddpSet.data, refSet.data);
  check.ok(`parameters within ${TOLERANCE} of one process with the global batch`, d <= TOLERANCE, `max relative difference ${d}`);
  check.ok('parameters moved', maxRelativeDifference(ddpSet.data, (() => { const s = new ParameterSet(SPECS); initialParams(s, 7); return s.data; })()) > 1e-3, 'training did not change them');
  check.ok('every rank holds the same parameters, bit for bit', await sameOnEveryRank(comm, ddpSet.data), 'they differ');
}

async function bucketsStartAsTheyFill(comm, check) {
  const specs = Array.from({ length: 6 }, (_, i) => ({ name: `layer${i}`, shape: [64] }));
  const set = new ParameterSet(specs);
  // Each bucket closes at 256 bytes: one 64-element tensor each.
  const dp = await DataParallel.create(comm, set, { bucketCapMB: 256 / 2 ** 20, firstBucketCapMB: 256 / 2 ** 20 });
  check.equal('one bucket per tensor', dp.buckets.length, 6);
  check.equal('bucket 0 holds the last registered tensor', dp.buckets[0].names.join(), 'layer5');
  comm.resetStats();
  for (const t of set.tensors) set.gradView(t.name).fill(comm.rank + 1);
  // The backward pass: the last layer's gradient first. Rank 1 marks the middle ones in another
  // order; the buckets must still start in bucket order (detail mode checks every call matches).
  const order = comm.rank === 1 ? ['layer5', 'layer3', 'layer4', 'layer2', 'layer1', 'layer0'] : ['layer5', 'layer4', 'layer3', 'layer2', 'layer1', 'layer0'];
  const callsAfter = [];
  for (const name of order) {
    dp.gradReady(name);
    callsAfter.push((comm.stats().operations.allReduce ?? { calls: 0 }).calls);
  }
  check.ok("the first bucket's all-reduce starts before the last gradient is ready", callsAfter[0] === 1 && callsAfter[order.length - 2] >= 1, `allReduce calls after each gradReady: ${callsAfter.join(',')}`);
  if (comm.rank === 1) check.equal('a bucket that fills early waits for the ones before it', callsAfter[1], 1);
  await dp.synchronize();
  const mean = (comm.size + 1) / 2;
  for (const t of set.tensors) check.ok(`${t.name} averaged`, set.gradView(t.name).every((v) => v === mean), `got ${set.gradView(t.name)[0]}, expected ${mean}`);
  const stats = comm.stats().operations.allReduce;
  const expected = dp.buckets.reduce((sum, b) => sum + (2 * (comm.size - 1) * (b.end - b.begin) * 4) / comm.size, 0);
  check.equal('stats: one all-reduce per bucket', stats.calls, 6);
  check.equal('stats: bytes sent = Σ 2(n−1)/n × bucket bytes', stats.bytesSent, expected);
  check.equal('stats: bytes received = bytes sent', stats.bytesReceived, expected);
}

/** Each rank's gradient element i in round `t`, reproducible on every rank. */
function gradientOf(r, t, n) {
  const g = new Float32Array(n);
  const rand = rng(97 + 13 * r + 1009 * t);
  for (let i = 0; i < n; i++) g[i] = (rand() * 2 - 1) * (1 + (i % 7));
  return g;
}

const BOUNDS = {
  // Rounding each input and the result once: half an ulp of each.
  fp16: (absIn, absOut) => (absIn + absOut) * 2 ** -11 + 2 ** -24,
  bf16: (absIn, absOut) => (absIn + absOut) * 2 ** -8 + 2 ** -133,
  // Two quantizations (the inputs, then the reduced shard): half a step of each block's scale.
  int8: (absIn, absOut) => ((absIn + absOut) / 127) * 0.5001,
  int4: (absIn, absOut) => ((absIn + absOut) / 7) * 0.5001,
  // e4m3 keeps 3 mantissa bits: at most 2^-4 relative per quantization, plus the block's floor.
  fp8: (absIn, absOut) => (absIn + absOut) * (2 ** -4 + 2 ** -9),
};

/** The largest |x| of the 256-element block holding element i, over `arrays`. */
function blockAbsMax(arrays, i, block = 256) {
  const b0 = Math.floor(i / block) * block;
  let m = 0;
  for (const a of arrays) for (let k = b0; k < Math.min(a.length, b0 + block); k++) m = Math.max(m, Math.abs(a[k]));
  return m;
}

async function commHooksWithinBounds(comm, check) {
  const n = 1500;
  for (const compress of ['fp16', 'bf16', 'int8', 'int4', 'fp8']) {
    check.begin(`comm hook ${compress} within the format's bound`);
    const set = new ParameterSet([{ name: 'w', shape: [n] }]);
    const dp = await DataParallel.create(comm, set, { compress, errorFeedback: false });
    const inputs = Array.from({ length: comm.size }, (_, r) => gradientOf(r, 0, n));
    set.gradView('w').set(inputs[comm.rank]);
    dp.gradsReady();
    await dp.synchronize();
    const got = set.gradView('w');
    const exact = new Float64Array(n);
    for (const a of inputs) for (let i = 0; i < n; i++) exact[i] += a[i] / comm.size;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const half = compress === 'fp16' || compress === 'bf16';
      const absIn = half ? Math.max(...inputs.map((a) => Math.abs(a[i]))) : blockAbsMax(inputs, i);
      const absOut = half ? Math.abs(exact[i]) : blockAbsMax([exact], i);
      const err = Math.abs(got[i] - exact[i]);
      const bound = BOUNDS[compress](absIn, absOut);
      if (err > bound) {
        check.fail(`element ${i}`, `|${got[i]} − ${exact[i]}| = ${err} > ${bound}`);
        break;
      }
      worst = Math.max(worst, err / bound);
    }
    check.ok('not exact (the hook did compress)', worst > 0, 'the average is exact: was anything compressed?');
    check.attach('worstOfBound', worst);
  }
}

async function errorFeedbackStaysClose(comm, check) {
  const n = 1000;
  const T = 50;
  for (const compress of ['int8', 'int4']) {
    check.begin(`error feedback (${compress}): the running sum stays within one step of exact over ${T} steps`);
    const set = new ParameterSet([{ name: 'w', shape: [n] }]);
    const dp = await DataParallel.create(comm, set, { compress });
    const sum = new Float64Array(n);
    const exact = new Float64Array(n);
    let worst = 0;
    for (let t = 0; t < T; t++) {
      const inputs = Array.from({ length: comm.size }, (_, r) => gradientOf(r, t, n));
      set.gradView('w').set(inputs[comm.rank]);
      dp.gradsReady();
      await dp.synchronize();
      const got = set.gradView('w');
      for (let i = 0; i < n; i++) {
        sum[i] += got[i];
        for (const a of inputs) exact[i] += a[i] / comm.size;
      }
      // One step: what one call may be off by (the bound of a single compressed average,
      // taken with the largest inputs any step can have: |g| < 7).
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(sum[i] - exact[i]) / BOUNDS[compress](7, 7));
    }
    check.ok('within one step at every step', worst <= 1, `worst: ${worst} steps`);
    check.attach('worstSteps', worst);
  }
}

async function layoutMismatch(comm, check) {
  const specs = SPECS.map((s) => (comm.rank === 1 && s.name === 'fc2.weight' ? { name: s.name, shape: [OUT + 1, HIDDEN] } : s));
  let err;
  try {
    await DataParallel.create(comm, new ParameterSet(specs));
  } catch (e) {
    err = e;
  }
  check.ok('refused', err instanceof TrainingError, `got ${err}`);
  if (err) {
    check.equal('code', err.code, 'LAYOUT_MISMATCH');
    check.ok('names the tensor and what each rank has', /tensor #2: rank 0 has "fc2.weight" \[5, 16\], rank 1 has "fc2.weight" \[6, 16\]/.test(err.message), err.message);
  }
}

async function missingGradient(comm, check) {
  const set = new ParameterSet(SPECS);
  const dp = await DataParallel.create(comm, set);
  set.grad.fill(1);
  for (const t of [...set.tensors].reverse()) if (!(comm.rank === 0 && t.name === 'fc1.bias')) dp.gradReady(t.name);
  let err;
  try {
    await dp.synchronize();
  } catch (e) {
    err = e;
  }
  if (comm.rank === 0) {
    check.ok('the rank that missed one: GRADIENT_NOT_READY', err instanceof TrainingError && err.code === 'GRADIENT_NOT_READY', `got ${err}`);
    check.ok('naming it', err && /"fc1\.bias"/.test(err.message), err && err.message);
  } else {
    check.ok('the other ranks complete', err === undefined, `got ${err}`);
  }
  // The next step runs normally on every rank: nothing was left in flight.
  set.grad.fill(comm.rank);
  dp.gradsReady();
  await dp.synchronize();
  check.ok('the next step averages', set.grad[0] === (comm.size - 1) / 2, `got ${set.grad[0]}`);
}

async function main() {
  const comm = await init();
  const check = new Checker(comm.rank);
  check.begin('DDP equals one process with the global batch');
  await trainAgainstReference(comm, check, false, sgd);
  check.begin('DDP with AdamW stepped bucket by bucket equals one process with the global batch');
  await trainAgainstReference(comm, check, false, adamw);
  check.begin('noSync accumulation equals one process with the global batch');
  await trainAgainstReference(comm, check, true, sgd);
  check.begin('buckets start as they fill, in one order on every rank; stats count their bytes');
  await bucketsStartAsTheyFill(comm, check);
  await commHooksWithinBounds(comm, check);
  await errorFeedbackStaysClose(comm, check);
  check.begin('a different model is refused on every rank, naming the tensor');
  await layoutMismatch(comm, check);
  check.begin('a gradient never marked ready is named, and no rank hangs');
  await missingGradient(comm, check);
  check.report();
  await comm.destroy();
}

run(main);
