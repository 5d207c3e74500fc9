'use strict';
// One rank of test/98.diloco.test.js: DiLoCo against values computed here without it — the
// parameter average in float64 (exact inputs), torch.optim.SGD(nesterov=True)'s formula in
// float64, the known optimum of a least-squares problem, the byte formula, each rank's hash of
// θ_global — and a run that saves, stops and resumes against one that does not.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { init, quantizedSize } = require('../../dist');
const { ParameterSet, SGD, AdamW, DiLoCo, saveDiLoCoCheckpoint, loadDiLoCoCheckpoint } = require('../../dist/training');
const { Checker, run } = require('../helpers/worker');
const { rng } = require('../helpers/rng');

const SPECS = [
  { name: 'w', shape: [30, 20] },
  { name: 'b', shape: [37] },
];
const N = 637;

/**
 * Rank r's least-squares objective ½ Σ_k a_k (θ_k − c_rk)²: the curvature a_k is every rank's
 * (so the averaged pseudo-gradient points at the global optimum), the targets c_rk are the
 * rank's own. The optimum of the sum is θ*_k = mean_r c_rk.
 */
function problem(size) {
  const a = Float64Array.from({ length: N }, (_, k) => 0.1 + (0.9 * (k % 7)) / 6);
  const c = Array.from({ length: size }, (_, r) => {
    const rand = rng(31 + 7 * r);
    return Float64Array.from({ length: N }, () => rand() * 4 - 2);
  });
  const optimum = Float64Array.from({ length: N }, (_, k) => c.reduce((s, cr) => s + cr[k], 0) / size);
  return { a, c, optimum };
}

/** g = a ⊙ (θ − c_r), in float32 into the gradient buffer. */
function gradient(set, pb, r) {
  const p = set.data;
  const g = set.grad;
  for (let k = 0; k < N; k++) g[k] = pb.a[k] * (p[k] - pb.c[r][k]);
}

const maxAbs = (x, y) => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
};

async function sameEverywhere(comm, hash) {
  const all = await comm.allGatherObject(hash);
  return all.every((h) => h === all[0]);
}

/** H = 1, outer SGD lr 1 momentum 0: θ_global after each step must be the plain average of the ranks' parameters. */
async function equalsAveraging(comm, check) {
  const { rank, size } = comm;
  const set = new ParameterSet(SPECS);
  // Integers, halved once per step and averaged over 4 ranks: every value below stays exact in
  // float32 for these 10 steps, so any order of summation gives the same bits.
  const c = Array.from({ length: size }, (_, r) => {
    const rand = rng(5 + r);
    return Float64Array.from({ length: N }, () => Math.floor(rand() * 17) - 8);
  });
  const start = rng(99);
  for (let k = 0; k < N; k++) set.data[k] = Math.floor(start() * 17) - 8;
  const inner = new SGD(set, { lr: 0.5 });
  const diloco = await DiLoCo.create(comm, set, { innerOptimizer: inner, syncEvery: 1, outer: { lr: 1, momentum: 0, nesterov: false } });
  const ref = Float64Array.from(set.data);
  let exact = true;
  let moved = 0;
  for (let step = 1; step <= 10; step++) {
    for (let k = 0; k < N; k++) set.grad[k] = set.data[k] - c[rank][k];
    inner.step();
    await diloco.step();
    const next = new Float64Array(N);
    for (let r = 0; r < size; r++) for (let k = 0; k < N; k++) next[k] += ref[k] - 0.5 * (ref[k] - c[r][k]);
    for (let k = 0; k < N; k++) {
      next[k] /= size;
      if (Math.fround(next[k]) !== next[k]) exact = false;
      if (next[k] !== ref[k]) moved++;
    }
    ref.set(next);
    check.same(`step ${step}: θ_global = the average of the ranks' parameters`, diloco.globalParams, Float32Array.from(ref));
    check.same(`step ${step}: the local parameters restart from θ_global`, set.data, Float32Array.from(ref));
  }
  check.ok('the reference stayed exact in float32 (so bit equality is the right test)', exact, 'it did not');
  check.ok('the parameters moved', moved > N, `${moved} changes`);
  check.equal('one sync round per step', diloco.syncRounds, 10);
}

/** Outer Nesterov against torch.optim.SGD(lr 0.7, momentum 0.9, nesterov=True) in float64. */
async function nesterovAgainstTorch(comm, check) {
  const { rank, size } = comm;
  const pb = problem(size);
  const set = new ParameterSet(SPECS);
  const inner = new SGD(set, { lr: 0.1 });
  const H = 5;
  const diloco = await DiLoCo.create(comm, set, { innerOptimizer: inner, syncEvery: H });
  check.equal('default outer lr', diloco.options.outer.lr, 0.7);
  check.equal('default outer momentum', diloco.options.outer.momentum, 0.9);
  check.equal('default outer nesterov', diloco.options.outer.nesterov, true);
  const theta = new Float64Array(N);
  const buf = new Float64Array(N);
  let first = true;
  let worst = 0;
  for (let round = 1; round <= 6; round++) {
    for (let s = 0; s < H; s++) {
      gradient(set, pb, rank);
      inner.step();
      await diloco.step();
    }
    // The reference: every rank's H inner SGD steps from θ, the averaged Δ, torch's update
    // (buf = g on the first step, else μ·buf + g; p −= lr·(g + μ·buf)).
    const delta = new Float64Array(N);
    for (let r = 0; r < size; r++) {
      const p = Float64Array.from(theta);
      for (let s = 0; s < H; s++) for (let k = 0; k < N; k++) p[k] -= 0.1 * pb.a[k] * (p[k] - pb.c[r][k]);
      for (let k = 0; k < N; k++) delta[k] += (theta[k] - p[k]) / size;
    }
    for (let k = 0; k < N; k++) {
      buf[k] = first ? delta[k] : 0.9 * buf[k] + delta[k];
      theta[k] -= 0.7 * (delta[k] + 0.9 * buf[k]);
    }
    first = false;
    worst = Math.max(worst, maxAbs(diloco.globalParams, theta));
  }
  check.ok('θ_global within 1e-5 of the float64 reference after every outer step', worst <= 1e-5, `max difference ${worst}`);
  check.ok('the outer steps moved θ_global', maxAbs(theta, new Float64Array(N)) > 0.1, 'they did not');
}

/** Streaming: P = 4 fragments of H = 12 (staggered by 3), τ = 2. */
async function fragments(comm, check) {
  const { rank, size } = comm;
  const pb = problem(size);
  const set = new ParameterSet(SPECS);
  const inner = new SGD(set, { lr: 0.1 });
  const H = 12;
  const P = 4;
  const tau = 2;
  const diloco = await DiLoCo.create(comm, set, { innerOptimizer: inner, syncEvery: H, fragments: P, fragmentSyncDelay: tau });
  const frags = diloco.fragments;
  check.equal('fragments cover the buffer', frags[P - 1].end - frags[0].begin, set.length);
  for (let f = 1; f < P; f++) check.equal(`fragment ${f} starts where ${f - 1} ends`, frags[f].begin, frags[f - 1].end);
  comm.resetStats();
  const changedAt = Array.from({ length: N }, () => []);
  let before = Float32Array.from(diloco.globalParams);
  const inFlightSeen = [];
  const key = (t) => `diloco-fragments-${process.env.COLLECTIVES_RUN_ID ?? ''}-seen-${t}`;
  for (let t = 1; t <= 3 * H; t++) {
    gradient(set, pb, rank);
    inner.step();
    // Rank 1 issues each launch only once rank 0 has run the τ inner steps after its own: rank
    // 0's all-reduce cannot complete during them, so rank 0 sees it in flight, whatever the timing.
    const launching = diloco.schedule.eventsAt(t).some((e) => e.kind === 'launch');
    if (rank === 1 && launching) await comm.store.wait([key(t + tau - 1)]);
    await diloco.step();
    const g = diloco.globalParams;
    for (let k = 0; k < N; k++) if (g[k] !== before[k]) changedAt[k].push(t);
    before = Float32Array.from(g);
    if (rank === 0) {
      // Let completions in: a finished all-reduce would show now.
      await new Promise(setImmediate);
      inFlightSeen.push({ t, inFlight: diloco.inFlight(), pending: comm.pending });
      await comm.store.set(key(t), '1');
    }
  }
  // Fragment f syncs at t ≡ (f + 1)·H/P (mod H): every element changes exactly then.
  let wrong = 0;
  let first = '';
  for (const fr of frags) {
    const at = (fr.index + 1) * (H / P);
    const want = [at, at + H, at + 2 * H].filter((x) => x <= 3 * H);
    for (let k = fr.begin; k < Math.min(fr.end, N); k++) {
      if (changedAt[k].join() !== want.join()) {
        wrong++;
        if (!first) first = `element ${k} (fragment ${fr.index}) changed at steps ${changedAt[k].join(',')}, expected ${want.join(',')}`;
      }
    }
  }
  check.ok('every parameter is synchronized exactly once per H steps, at its fragment\'s sync point', wrong === 0, `${wrong} elements: ${first}`);
  check.equal('sync rounds: P per H steps', diloco.syncRounds, 3 * P);
  const bytes = comm.stats().operations.allReduce.bytesSent;
  const want = 3 * frags.reduce((s, f) => s + (2 * (size - 1) * (f.end - f.begin) * 4) / size, 0);
  check.equal('bytes sent: 2(n−1)/n × the whole buffer per H steps', bytes, want);
  if (rank === 0) {
    // After each launch (t ≡ (f+1)·H/P − τ), through the τ − 1 steps after it, the fragment's
    // round is still in flight: rank 1 has not issued it yet, and these steps did not wait.
    let missed = '';
    for (const fr of frags) {
      for (let cycle = 0; cycle < 3; cycle++) {
        const launch = (fr.index + 1) * (H / P) - tau + cycle * H;
        for (let t = launch; t < launch + tau; t++) {
          const seen = inFlightSeen.find((x) => x.t === t);
          if (!seen || !seen.inFlight.includes(fr.index) || seen.pending === 0) missed ||= `step ${t}: fragment ${fr.index} in flight ${JSON.stringify(seen)}`;
        }
      }
    }
    check.ok("a fragment's all-reduce is in flight during the τ overlapped inner steps", missed === '', missed);
    const syncs = inFlightSeen.filter((x) => x.t % (H / P) === 0);
    const landed = syncs.every((x) => !x.inFlight.includes((x.t / (H / P) - 1) % P));
    check.ok('and has landed at its sync point', landed, JSON.stringify(syncs));
  }
}

const MODES = [
  { name: 'sync', opts: {} },
  { name: 'sync, streaming (P = 2, τ = 1, α = 0.5)', opts: { fragments: 2, fragmentSyncDelay: 1, fragmentUpdateAlpha: 0.5 } },
  { name: 'eager (τ = 3)', opts: { mode: 'eager', fragmentSyncDelay: 3 } },
  { name: 'delayed', opts: { mode: 'delayed' } },
];
// Outer lr 0.5 and momentum 0.5 rather than the paper's 0.7 and 0.9: momentum μ caps the rate
// at about √μ a round, and these tests must reach the optimum in a few dozen rounds; and here
// the inner phase nearly reaches each rank's own optimum (Δ ≈ the whole distance), where a
// one-step-delayed update with 0.7 / 0.9 (or 0.7 / 0.5) diverges.
const OUTER = { lr: 0.5, momentum: 0.5 };
// The quantized formats: with data that differ between ranks, each rank's Δ stays large at
// the optimum (only their average vanishes), so θ_global settles within a quantization step of
// those Δ: max|Δ*| / 127 (int8), / 7 (int4), × 2⁻³ (fp8 e4m3, 3 mantissa bits).
const FORMATS = [
  { name: 'float32', quantize: undefined, step: () => 1e-5 },
  { name: 'int8', quantize: 'int8', step: (d) => d / 127 },
  { name: 'int4', quantize: 'int4', step: (d) => d / 7 },
  { name: 'fp8', quantize: 'fp8', step: (d) => d / 8 },
];

/** max over ranks and elements of |Δ| at the optimum: H inner SGD steps from θ*, in float64. */
function deltaAtOptimum(pb, H, lr) {
  let m = 0;
  for (const c of pb.c) {
    for (let k = 0; k < N; k++) {
      let p = pb.optimum[k];
      for (let s = 0; s < H; s++) p -= lr * pb.a[k] * (p - c[k]);
      m = Math.max(m, Math.abs(pb.optimum[k] - p));
    }
  }
  return m;
}

/** Each mode and format on the least-squares problem: the optimum, and θ_global's hash after every outer step. */
async function converges(comm, check, mode, format, rounds) {
  const { rank, size } = comm;
  const pb = problem(size);
  const set = new ParameterSet(SPECS);
  const inner = new SGD(set, { lr: 0.3 });
  const H = 10;
  const diloco = await DiLoCo.create(comm, set, { innerOptimizer: inner, syncEvery: H, outer: OUTER, quantize: format.quantize, checkState: true, ...mode.opts });
  const start = maxAbs(diloco.globalParams, pb.optimum);
  comm.resetStats();
  let hashesDiffer = 0;
  let outer = 0;
  for (let t = 1; t <= rounds * H; t++) {
    gradient(set, pb, rank);
    inner.step();
    await diloco.step();
    if (diloco.outerSteps !== outer) {
      outer = diloco.outerSteps;
      if (!(await sameEverywhere(comm, diloco.globalHash()))) hashesDiffer++;
    }
  }
  check.ok('outer steps were taken', outer >= rounds - 1, `${outer} outer steps`);
  // Bytes from the formulas of docs/api.md, per fragment per round.
  const perRound = diloco.fragments.reduce((sum, f) => {
    const n = f.end - f.begin;
    if (format.quantize === undefined) return sum + (2 * (size - 1) * n * 4) / size;
    return sum + 2 * (size - 1) * quantizedSize(Math.ceil(n / size), { format: format.quantize === 'fp8' ? 'fp8e4m3' : format.quantize });
  }, 0);
  const op = comm.stats().operations[format.quantize === undefined ? 'allReduce' : 'allReduceQuantized'];
  check.equal('bytes sent: the formula × the rounds', op.bytesSent, perRound * (diloco.syncRounds / diloco.fragments.length));
  check.equal('θ_global is the same on every rank, bit for bit, after every outer step', hashesDiffer, 0);
  const err = maxAbs(diloco.globalParams, pb.optimum);
  const bound = format.step(deltaAtOptimum(pb, H, 0.3));
  check.ok(`θ_global reaches the optimum within ${bound.toPrecision(3)} (from ${start.toFixed(2)})`, err <= bound, `max |θ − θ*| = ${err}`);
  check.attach('error', err);
  await diloco.free();
}

/** A θ_global corrupted on one rank is caught at the next outer step, on every rank. */
async function mismatchCaught(comm, check) {
  const set = new ParameterSet(SPECS);
  const diloco = await DiLoCo.create(comm, set, { syncEvery: 2, checkState: true });
  await diloco.step();
  if (comm.rank === 1) diloco.globalParams[3] += 1;
  set.data.fill(0.5);
  let err;
  try {
    await diloco.step();
  } catch (e) {
    err = e;
  }
  check.equal('STATE_MISMATCH on every rank', err && err.code, 'STATE_MISMATCH');
  check.ok('naming rank 1', err && /rank 1 has/.test(err.message), err && err.message);
}

/** Runs `steps` inner steps (AdamW inner) from a fixed start; `pauseAt` saves there and goes on in fresh objects. */
async function train(comm, options, steps, pauseAt, root) {
  const { rank, size } = comm;
  const pb = problem(size);
  const make = async () => {
    const set = new ParameterSet(SPECS);
    const init0 = rng(3);
    for (let k = 0; k < N; k++) set.data[k] = init0() - 0.5;
    const inner = new AdamW(set, { lr: 0.05, weightDecay: 0.01 });
    const diloco = await DiLoCo.create(comm, set, { innerOptimizer: inner, syncEvery: 6, ...options });
    return { set, inner, diloco };
  };
  let { set, inner, diloco } = await make();
  let inFlightAtSave = null;
  for (let t = 1; t <= steps; t++) {
    gradient(set, pb, rank);
    inner.step();
    await diloco.step();
    if (t === pauseAt) {
      inFlightAtSave = diloco.inFlight();
      await saveDiLoCoCheckpoint(root, { diloco, step: t, meta: { note: 'mid-run' } });
      await diloco.free();
      ({ set, inner, diloco } = await make());
      // A local step of the fresh objects first: loading must overwrite what it changed.
      gradient(set, pb, rank);
      inner.step();
      const loaded = await loadDiLoCoCheckpoint(root, { diloco });
      if (loaded.step !== t || loaded.meta.note !== 'mid-run') throw new Error(`loaded ${JSON.stringify(loaded)}`);
    }
  }
  return { local: Float32Array.from(set.data), global: Float32Array.from(diloco.globalParams), inFlightAtSave, outerSteps: diloco.outerSteps };
}

async function resumes(comm, check, name, options, pauseAt) {
  const root = path.join(os.tmpdir(), `diloco-ckpt-${process.env.COLLECTIVES_RUN_ID ?? 'x'}-${name.replace(/\W+/g, '-')}`);
  if (comm.rank === 0) fs.rmSync(root, { recursive: true, force: true });
  await comm.barrier();
  const straight = await train(comm, options, 30, 0, root);
  const resumed = await train(comm, options, 30, pauseAt, root);
  if ((options.mode ?? 'sync') !== 'sync' || options.fragmentSyncDelay) {
    check.ok('a round was in flight when it saved', resumed.inFlightAtSave.length > 0, `in flight: ${JSON.stringify(resumed.inFlightAtSave)}`);
  }
  check.same('local parameters: the same bits as the run that did not stop', resumed.local, straight.local);
  check.same('θ_global: the same bits as the run that did not stop', resumed.global, straight.global);
  check.equal('outer steps counted alike', resumed.outerSteps, straight.outerSteps);
  check.ok('every rank wrote its own directory', fs.existsSync(path.join(root, `rank-${comm.rank}`, 'latest')), 'no latest');
  await comm.barrier();
  if (comm.rank === 0) fs.rmSync(root, { recursive: true, force: true });
}

async function badOptions(comm, check) {
  const set = new ParameterSet(SPECS);
  const cases = [
    [{}, 'options.syncEvery'],
    [{ syncEvery: 0 }, 'options.syncEvery'],
    [{ syncEvery: 10, fragments: 11 }, 'options.fragments'],
    [{ syncEvery: 10, fragments: 2, fragmentSyncDelay: 5 }, 'options.fragmentSyncDelay'],
    [{ syncEvery: 10, mode: 'eager' }, 'options.fragmentSyncDelay'],
    [{ syncEvery: 10, mode: 'delayed', fragmentSyncDelay: 2 }, 'options.fragmentSyncDelay'],
    [{ syncEvery: 10, mode: 'later' }, 'options.mode'],
    [{ syncEvery: 10, quantize: 'int2' }, 'options.quantize'],
    [{ syncEvery: 10, quantize: { format: 'int8', blockSize: 12 } }, 'options.quantize.blockSize'],
    [{ syncEvery: 10, outer: { lr: -1 } }, 'options.outer.lr'],
    [{ syncEvery: 10, outer: { momentum: 0, nesterov: true } }, 'options.outer.momentum'],
    [{ syncEvery: 10, fragmentUpdateAlpha: 1.5 }, 'options.fragmentUpdateAlpha'],
    [{ syncEvery: 10, sync_every: 10 }, 'options.sync_every'],
  ];
  for (const [opts, name] of cases) {
    let err;
    try {
      await DiLoCo.create(comm, set, opts);
    } catch (e) {
      err = e;
    }
    check.ok(`${JSON.stringify(opts)} refused naming ${name}`, err && err.code === 'INVALID_ARGUMENT' && err.message.startsWith(`${name}:`), err ? `${err.code}: ${err.message}` : 'accepted');
  }
  let err;
  try {
    await DiLoCo.create(comm, set, { syncEvery: comm.rank === 2 ? 5 : 10 });
  } catch (e) {
    err = e;
  }
  check.equal('ranks with different options refused on every rank', err && err.code, 'STATE_MISMATCH');
  // free() with a round in flight waits for it; anything after free() is refused.
  const freed = await DiLoCo.create(comm, set, { syncEvery: 1, mode: 'delayed' });
  await freed.step();
  check.equal('a round is in flight before free()', freed.inFlight().length, 1);
  await freed.free();
  let after;
  try {
    await freed.step();
  } catch (e) {
    after = e;
  }
  check.ok('step() after free() is INVALID_STATE', after && after.code === 'INVALID_STATE' && /after free\(\)/.test(after.message), after ? `${after.code}: ${after.message}` : 'accepted');
}

async function main() {
  const comm = await init();
  const check = new Checker(comm.rank);
  check.begin('H = 1, outer lr 1, momentum 0 equals parameter averaging bit for bit');
  await equalsAveraging(comm, check);
  check.begin('outer Nesterov equals torch.optim.SGD(nesterov=True) in float64');
  await nesterovAgainstTorch(comm, check);
  check.begin('fragments: each parameter once per H steps, all-reduce in flight during τ steps, bytes');
  await fragments(comm, check);
  for (const mode of MODES) {
    for (const format of FORMATS) {
      check.begin(`${mode.name}, ${format.name}: optimum reached, θ_global bit-identical on every rank`);
      // A one-step-delayed update converges more slowly: more rounds.
      await converges(comm, check, mode, format, mode.opts.mode === 'delayed' ? 300 : 60);
    }
  }
  check.begin('a θ_global that differs on one rank is STATE_MISMATCH on every rank');
  await mismatchCaught(comm, check);
  for (const [name, options, pauseAt] of [
    ['sync', {}, 13],
    ['streaming int8', { fragments: 2, fragmentSyncDelay: 2, quantize: 'int8' }, 13],
    ['eager int4', { mode: 'eager', fragmentSyncDelay: 2, quantize: 'int4' }, 13],
    ['delayed', { mode: 'delayed' }, 13],
  ]) {
    check.begin(`checkpoint mid-run, resume: identical result (${name})`);
    await resumes(comm, check, name, options, pauseAt);
  }
  check.begin('bad options are refused naming the option');
  await badOptions(comm, check);
  check.report();
  await comm.destroy();
}

run(main);
