'use strict';
// AdamW and SGD against torch.optim's formulas computed here in float64 over 25 steps (weight
// decay, momentum, dampening, nesterov, lr schedules); stepping bucket by bucket and over a
// range against one step() bit for bit; state()/loadState() resuming bit for bit; the
// schedules against their closed forms; the option checks.
//
// Tolerance (float32 arithmetic against float64): the gradients are fixed inputs, so the
// float32 run and the float64 run differ only by rounding, which does not grow through the
// update (weight decay shrinks p; Adam's m, v and SGD's buffer are convex combinations). Each
// step rounds some six float32 operations whose operands are at most about max(1, |p|) here
// (|p| ≤ 3, lr·|update| ≤ 1), each by at most half an ulp: about 3 ulps of max(1, |p|) per
// step. TOL_ULPS = 4 per step, 100 ulps (6e-6 relative) after 25 steps; the runs measured
// here stay within 12. A formula error (bias correction, first-step dampening, decay order)
// is off by about lr·|g| ≥ 1e-4: 3 orders of magnitude above the tolerance.

const assert = require('node:assert/strict');
const { ParameterSet, AdamW, SGD, linearLR, cosineAnnealingLR, cosineWithWarmup } = require('../dist/training');
const { random } = require('./helpers/quant-reference');

const N = 300;
const T = 25;
const ULP = 2 ** -24;
const TOL_ULPS = 4;
const SPECS = [
  { name: 'w', shape: [20, 10] },
  { name: 'b', shape: [20] },
  { name: 'v', shape: [80] },
];

function floats(n, seed, f) {
  const r = random(seed);
  return Float32Array.from({ length: n }, () => Math.fround(f(r() * 2 - 1)));
}
const INIT = floats(N, 1, (x) => 2 * x);
// Gradients of either sign with |g| in [0.01, 1.01]: away from eps, where Adam's denominator
// would turn float32 rounding into large relative changes.
const GRADS = Array.from({ length: T + 10 }, (_, s) => floats(N, 100 + s, (x) => Math.sign(x) * (0.01 + Math.abs(x))));

function makeParams(padMultiple = 1) {
  const ps = new ParameterSet(SPECS, { padMultiple });
  ps.data.set(INIT);
  return ps;
}

function lrOf(o, t) {
  return typeof o.lr === 'function' ? o.lr(t) : o.lr;
}

// torch.optim.AdamW's _single_tensor_adamw, float64.
function adamw64(o) {
  const m = new Float64Array(N);
  const v = new Float64Array(N);
  return (p, g, t) => {
    const lr = lrOf(o, t);
    for (let i = 0; i < N; i++) {
      p[i] *= 1 - lr * o.weightDecay;
      m[i] = o.betas[0] * m[i] + (1 - o.betas[0]) * g[i];
      v[i] = o.betas[1] * v[i] + (1 - o.betas[1]) * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - o.betas[1] ** t) + o.eps;
      p[i] -= (lr / (1 - o.betas[0] ** t)) * (m[i] / denom);
    }
  };
}

// torch.optim.SGD's _single_tensor_sgd, float64.
function sgd64(o) {
  const buf = new Float64Array(N);
  return (p, g, t) => {
    const lr = lrOf(o, t);
    for (let i = 0; i < N; i++) {
      let d = g[i] + (o.weightDecay ?? 0) * p[i];
      if (o.momentum) {
        buf[i] = t === 1 ? d : o.momentum * buf[i] + (1 - (o.dampening ?? 0)) * d;
        d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  };
}

function checkAgainst(Optimizer, options, reference) {
  const ps = makeParams();
  const opt = new Optimizer(ps, options);
  const p = Float64Array.from(INIT);
  const step = reference;
  for (let t = 1; t <= T; t++) {
    ps.grad.set(GRADS[t - 1]);
    opt.step();
    step(p, GRADS[t - 1], t);
    assert.equal(opt.stepCount, t);
    for (let i = 0; i < N; i++) {
      const tol = TOL_ULPS * t * ULP * Math.max(1, Math.abs(p[i]));
      if (!(Math.abs(ps.data[i] - p[i]) <= tol)) assert.fail(`step ${t}, element ${i}: got ${ps.data[i]}, expected ${p[i]} ± ${tol}`);
    }
  }
  // The gradients are inputs: a step leaves them as they were.
  assert.deepEqual(ps.grad, GRADS[T - 1]);
}

function sameBits(a, b, what) {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  assert.equal(x.length, y.length, what);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

function invalidArgument(re) {
  return (e) => e.code === 'INVALID_ARGUMENT' && re.test(e.message);
}

const CASES = [
  ['AdamW, defaults', AdamW, {}, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 }, adamw64],
  ['AdamW, strong weight decay', AdamW, { lr: 0.02, weightDecay: 0.3, betas: [0.8, 0.99], eps: 1e-6 }, null, adamw64],
  ['AdamW, warm-up + cosine', AdamW, { lr: cosineWithWarmup(0.05, { warmupSteps: 5, totalSteps: T }), weightDecay: 0.1 }, null, adamw64],
  ['SGD, plain', SGD, { lr: 0.05 }, null, sgd64],
  ['SGD, weight decay', SGD, { lr: 0.05, weightDecay: 0.2 }, null, sgd64],
  ['SGD, momentum + dampening + weight decay', SGD, { lr: 0.03, momentum: 0.9, dampening: 0.4, weightDecay: 0.1 }, null, sgd64],
  ['SGD, nesterov + weight decay', SGD, { lr: 0.03, momentum: 0.9, nesterov: true, weightDecay: 0.05 }, null, sgd64],
  ['SGD, nesterov, linear warm-up', SGD, { lr: linearLR(0.05, { startFactor: 0.1, totalIters: 10 }), momentum: 0.8, nesterov: true }, null, sgd64],
  ['SGD, momentum, cosine', SGD, { lr: cosineAnnealingLR(0.05, { tMax: 20, etaMin: 0.001 }), momentum: 0.9 }, null, sgd64],
];

describe('91 training: optimizers', function () {
  describe('torch.optim formulas in float64, 25 steps', function () {
    for (const [title, Optimizer, options, referenceOptions, reference] of CASES) {
      it(title, function () {
        const defaults = Optimizer === AdamW ? { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 } : { weightDecay: 0 };
        checkAgainst(Optimizer, options, reference({ ...defaults, ...(referenceOptions ?? options) }));
      });
    }

    it('AdamW has torch.optim.AdamW defaults', function () {
      const o = new AdamW(makeParams());
      assert.deepEqual([o.lrAt(1), o.beta1, o.beta2, o.eps, o.weightDecay], [1e-3, 0.9, 0.999, 1e-8, 1e-2]);
      const s = new SGD(makeParams(), { lr: 0.1 });
      assert.deepEqual([s.momentum, s.dampening, s.weightDecay, s.nesterov], [0, 0, 0, false]);
    });
  });

  describe('bucket by bucket and by range', function () {
    const configs = [
      ['AdamW', AdamW, { lr: cosineWithWarmup(0.05, { warmupSteps: 3, totalSteps: 12 }), weightDecay: 0.1 }],
      ['SGD', SGD, { lr: linearLR(0.05), momentum: 0.9, nesterov: true, weightDecay: 0.1 }],
      ['SGD with dampening', SGD, { lr: 0.05, momentum: 0.9, dampening: 0.3 }],
    ];
    for (const [title, Optimizer, options] of configs) {
      it(`${title}: stepRange over buckets in reverse order, then endStep, gives step()'s bits`, function () {
        const a = makeParams(8);
        const b = makeParams(8);
        const oa = new Optimizer(a, options);
        const ob = new Optimizer(b, options);
        const r = random(7);
        for (let t = 1; t <= 12; t++) {
          a.grad.set(GRADS[t - 1]);
          b.grad.set(GRADS[t - 1]);
          oa.step();
          // Random bucket boundaries, visited last to first as DDP's buckets land.
          const cuts = [0, b.length];
          for (let k = 0; k < 4; k++) cuts.push(Math.floor(r() * b.length));
          cuts.sort((x, y) => x - y);
          for (let k = cuts.length - 1; k > 0; k--) ob.stepRange(cuts[k - 1], cuts[k]);
          assert.equal(ob.stepCount, t - 1);
          ob.endStep();
          assert.equal(ob.stepCount, t);
        }
        sameBits(a.data, b.data, 'parameters');
        const sa = oa.state();
        const sb = ob.state();
        for (const name of Object.keys(sa.tensors)) sameBits(sa.tensors[name], sb.tensors[name], name);
      });

      it(`${title}: over a range, holds state for the range only and steps only it`, function () {
        const full = makeParams(4);
        const part = makeParams(4);
        const range = part.shardRange(1, 4);
        const of = new Optimizer(full, options);
        const op = new Optimizer(part, options, range);
        for (let t = 1; t <= 8; t++) {
          full.grad.set(GRADS[t - 1]);
          part.grad.set(GRADS[t - 1]);
          of.step();
          op.step();
        }
        sameBits(part.data.subarray(range.begin, range.end), full.data.subarray(range.begin, range.end), 'the range');
        sameBits(part.data.subarray(0, range.begin), INIT.subarray(0, range.begin), 'before the range');
        sameBits(part.data.subarray(range.end), INIT.subarray(range.end), 'after the range');
        const st = op.state();
        assert.deepEqual(st.range, range);
        for (const [name, buf] of Object.entries(st.tensors)) {
          assert.equal(buf.length, range.end - range.begin, name);
          sameBits(buf, of.state().tensors[name].subarray(range.begin, range.end), name);
        }
        assert.throws(() => op.stepRange(0, range.end), invalidArgument(/^begin: /));
        assert.throws(() => op.stepRange(range.begin, range.end + 1), invalidArgument(/^end: /));
      });
    }
  });

  describe('state() and loadState()', function () {
    for (const [title, Optimizer, options] of [
      ['AdamW', AdamW, { lr: cosineWithWarmup(0.05, { warmupSteps: 4, totalSteps: 20 }), weightDecay: 0.1 }],
      ['SGD', SGD, { lr: 0.05, momentum: 0.9, dampening: 0.2, weightDecay: 0.1 }],
    ]) {
      it(`${title}: a resumed optimizer continues bit for bit`, function () {
        const a = makeParams();
        const oa = new Optimizer(a, options);
        for (let t = 1; t <= 10; t++) {
          a.grad.set(GRADS[t - 1]);
          oa.step();
        }
        const snapshot = oa.state();
        const params = a.data.slice();
        assert.equal(snapshot.step, 10);
        for (let t = 11; t <= 20; t++) {
          a.grad.set(GRADS[t - 1]);
          oa.step();
        }
        assert.equal(snapshot.step, 10, 'a snapshot does not follow later steps');

        const b = makeParams();
        b.data.set(params);
        const ob = new Optimizer(b, options);
        ob.loadState(snapshot);
        assert.equal(ob.stepCount, 10);
        for (let t = 11; t <= 20; t++) {
          b.grad.set(GRADS[t - 1]);
          ob.step();
        }
        sameBits(b.data, a.data, 'parameters after 20 steps');
        const sa = oa.state();
        const sb = ob.state();
        assert.deepEqual(Object.keys(sb.tensors), Object.keys(sa.tensors));
        for (const name of Object.keys(sa.tensors)) sameBits(sb.tensors[name], sa.tensors[name], name);
        assert.deepEqual(sb.options, sa.options);
      });
    }

    it('records torch names and numeric options', function () {
      const adam = new AdamW(makeParams(), { lr: 0.01 }).state();
      assert.deepEqual(Object.keys(adam.tensors), ['exp_avg', 'exp_avg_sq']);
      assert.deepEqual(adam.options, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, lr: 0.01 });
      assert.deepEqual(Object.keys(new SGD(makeParams(), { lr: 1, momentum: 0.5 }).state().tensors), ['momentum_buffer']);
      assert.deepEqual(Object.keys(new SGD(makeParams(), { lr: 1 }).state().tensors), []);
    });

    it('refuses state of other names, lengths or ranges, and writes nothing then', function () {
      const ps = makeParams(4);
      const o = new AdamW(ps);
      const good = o.state();
      const invalid = (re) => (e) => e.code === 'CHECKPOINT_INVALID' && re.test(e.message);
      assert.throws(() => o.loadState({ ...good, tensors: { exp_avg: good.tensors.exp_avg } }), invalid(/"exp_avg_sq" is missing/));
      assert.throws(() => o.loadState({ ...good, tensors: { ...good.tensors, momentum_buffer: good.tensors.exp_avg } }), invalid(/unexpected state tensor "momentum_buffer"/));
      assert.throws(
        () => o.loadState({ ...good, step: 5, tensors: { exp_avg: new Float32Array(3).fill(1), exp_avg_sq: good.tensors.exp_avg_sq } }),
        invalid(/"exp_avg" should be a Float32Array of 300 elements, got 3 elements/),
      );
      assert.throws(() => o.loadState({ ...good, range: { begin: 0, end: 100 } }), invalid(/covers elements \[0, 100\)/));
      assert.throws(() => o.loadState({ ...good, step: -1 }), invalidArgument(/^state\.step: /));
      assert.throws(() => o.loadState({ ...good, extra: 1 }), invalidArgument(/^state\.extra: /));
      assert.equal(o.stepCount, 0);
    });
  });

  describe('learning rates and schedules', function () {
    it('calls an lr function once per step with the 1-based number of the step being taken', function () {
      const calls = [];
      const ps = makeParams();
      const o = new SGD(ps, { lr: (t) => (calls.push(t), 0.1) });
      o.step();
      o.stepRange(0, 10);
      o.stepRange(10, 300);
      o.endStep();
      o.step();
      assert.deepEqual(calls, [1, 2, 3]);
      assert.throws(() => new SGD(makeParams(), { lr: () => NaN }).step(), invalidArgument(/^options\.lr\(1\): /));
      const bad = new SGD(makeParams(), { lr: (t) => (t === 2 ? -1 : 1) });
      bad.step();
      assert.throws(() => bad.step(), invalidArgument(/^options\.lr\(2\): /));
    });

    it('linearLR is torch LinearLR at last_epoch = t − 1', function () {
      const f = linearLR(0.3, { startFactor: 0.25, endFactor: 1, totalIters: 4 });
      const closed = (e) => 0.3 * (0.25 + (0.75 * Math.min(e, 4)) / 4);
      for (let t = 1; t <= 10; t++) assert.equal(f(t), closed(t - 1), `t=${t}`);
      assert.equal(f(1), 0.3 * 0.25);
      assert.equal(f(5), 0.3);
      // torch's defaults: start_factor 1/3, end_factor 1, total_iters 5.
      const d = linearLR(1);
      for (let t = 1; t <= 8; t++) assert.equal(d(t), 1 / 3 + ((1 - 1 / 3) * Math.min(t - 1, 5)) / 5, `t=${t}`);
      assert.equal(d(6), 1);
    });

    it('cosineAnnealingLR is the CosineAnnealingLR closed form', function () {
      const f = cosineAnnealingLR(0.1, { tMax: 10, etaMin: 0.01 });
      assert.equal(f(1), 0.1);
      assert.ok(Math.abs(f(6) - 0.055) < 1e-15, 'half way: (base + etaMin) / 2');
      assert.ok(Math.abs(f(11) - 0.01) < 1e-15, 'at tMax: etaMin');
      for (let t = 1; t <= 25; t++) assert.equal(f(t), 0.01 + ((0.1 - 0.01) * (1 + Math.cos((Math.PI * (t - 1)) / 10))) / 2);
    });

    it('cosineWithWarmup is transformers get_cosine_schedule_with_warmup', function () {
      const f = cosineWithWarmup(1, { warmupSteps: 4, totalSteps: 12 });
      assert.deepEqual([1, 2, 3, 4, 5].map(f), [0, 0.25, 0.5, 0.75, 1]);
      assert.ok(Math.abs(f(9) - 0.5) < 1e-15, 'half way through the decay');
      assert.ok(Math.abs(f(13)) < 1e-15, 'zero at totalSteps');
      // Past totalSteps the cosine rises again, as in transformers.
      assert.equal(f(16), 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * (11 / 8))));
      const g = cosineWithWarmup(2, { warmupSteps: 0, totalSteps: 10, numCycles: 1 });
      for (let t = 1; t <= 10; t++) assert.equal(g(t), 2 * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * ((t - 1) / 10)))));
    });

    it('validates schedule options', function () {
      assert.throws(() => linearLR(0.1, { startFactor: 0 }), invalidArgument(/^options\.startFactor: /));
      assert.throws(() => linearLR(0.1, { total: 3 }), invalidArgument(/^options\.total: /));
      assert.throws(() => cosineAnnealingLR(0.1, {}), invalidArgument(/^options\.tMax: /));
      assert.throws(() => cosineWithWarmup(0.1, { warmupSteps: 10, totalSteps: 5 }), invalidArgument(/^options\.totalSteps: /));
      assert.throws(() => linearLR(-1), invalidArgument(/^baseLr: /));
      assert.throws(() => linearLR(1)(0), invalidArgument(/^step: /));
    });
  });

  describe('option checks', function () {
    const ps = makeParams();
    const cases = [
      [() => new AdamW(ps, { lr: 0.1, amsgrad: true }), /^options\.amsgrad: /],
      [() => new AdamW(ps, { betas: [0.9, 1] }), /^options\.betas\[1\]: /],
      [() => new AdamW(ps, { betas: 0.9 }), /^options\.betas: /],
      [() => new AdamW(ps, { lr: -1 }), /^options\.lr: /],
      [() => new AdamW(ps, { lr: Infinity }), /^options\.lr: /],
      [() => new AdamW(ps, { eps: -1 }), /^options\.eps: /],
      [() => new AdamW(ps, { weightDecay: '0.1' }), /^options\.weightDecay: /],
      [() => new SGD(ps), /^options: /],
      [() => new SGD(ps, {}), /^options\.lr: /],
      [() => new SGD(ps, { lr: 0.1, nesterov: true }), /^options\.momentum: .*nesterov/],
      [() => new SGD(ps, { lr: 0.1, nesterov: true, momentum: 0.9, dampening: 0.1 }), /^options\.dampening: .*nesterov/],
      [() => new SGD(ps, { lr: 0.1, nesterov: 1, momentum: 0.9 }), /^options\.nesterov: /],
      [() => new SGD(ps, { lr: 0.1, momentum: -0.5 }), /^options\.momentum: /],
      [() => new SGD(ps, { lr: 0.1, weight_decay: 0.1 }), /^options\.weight_decay: /],
      [() => new SGD(ps, { lr: 0.1 }, { begin: 5, end: 2 }), /^range\.end: /],
      [() => new SGD(ps, { lr: 0.1 }, { begin: 0, end: 301 }), /^range\.end: /],
    ];
    for (const [f, re] of cases) {
      it(`refuses ${re.source.replace(/\\/g, '').slice(1, 40)}`, function () {
        assert.throws(f, invalidArgument(re));
      });
    }
  });
});
