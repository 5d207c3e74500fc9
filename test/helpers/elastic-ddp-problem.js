'use strict';
// The least-squares problem of the elastic data-parallel worker, and its replay in float64:
// shared by test/workers/elastic-ddp.js and test/99.elastic-ddp.test.js, so the run is checked
// against a computation that shares nothing with the library but the problem.

const { rng } = require('./rng');

const SPECS = [
  { name: 'w', shape: [16, 12] },
  { name: 'b', shape: [21] },
];
const N = 213;
const LR = 0.1;

/** Slot s minimizes ½ Σ a_k (θ_k − c_sk)²; a is every slot's. */
const a = Float64Array.from({ length: N }, (_, k) => 0.2 + (0.8 * (k % 5)) / 4);
function target(slot) {
  const rand = rng(301 + slot);
  return Float64Array.from({ length: N }, () => rand() * 2 - 1);
}
/** The starting parameters; `slot` ≥ 0 shifts them, for the broadcastParameters case. */
function start(slot = -1) {
  const rand = rng(17);
  return Float64Array.from({ length: N }, (_, k) => rand() * 4 - 2 + (slot >= 0 ? 0.5 * slot + 0.001 * k : 0));
}

/**
 * θ after the given steps, in float64: step t averages, over its contributors' slots, the
 * gradient a ⊙ (θ − c_s), then takes torch's SGD step (with momentum μ when given:
 * buf ← g on the first step, μ·buf + g after; θ ← θ − lr·buf).
 */
function replay(contributorSlots, { momentum = 0 } = {}) {
  const theta = Float64Array.from(start(), (x) => Math.fround(x));
  const buf = new Float64Array(N);
  const targets = new Map();
  contributorSlots.forEach((slots, i) => {
    const g = new Float64Array(N);
    for (const s of slots) {
      if (!targets.has(s)) targets.set(s, target(s));
      const c = targets.get(s);
      for (let k = 0; k < N; k++) g[k] += (a[k] * (theta[k] - c[k])) / slots.length;
    }
    for (let k = 0; k < N; k++) {
      buf[k] = momentum === 0 || i === 0 ? g[k] : momentum * buf[k] + g[k];
      theta[k] -= LR * buf[k];
    }
  });
  return theta;
}

module.exports = { SPECS, N, LR, a, target, start, replay };
