'use strict';
// The least-squares problem of the elastic DiLoCo worker, and its replay in float64: shared by
// test/workers/elastic-diloco.js and test/99.elastic.test.js, so the run is checked against a
// computation that shares nothing with the library but the problem.

const { rng } = require('./rng');

const SPECS = [
  { name: 'w', shape: [20, 10] },
  { name: 'b', shape: [13] },
];
const N = 213;
const H = 5;
const INNER_LR = 0.2;
const OUTER = { lr: 0.7, momentum: 0.9, nesterov: true };

/** Slot s minimizes ½ Σ a_k (θ_k − c_sk)²; a is every slot's. */
const a = Float64Array.from({ length: N }, (_, k) => 0.2 + (0.8 * (k % 5)) / 4);
function target(slot) {
  const rand = rng(101 + slot);
  return Float64Array.from({ length: N }, () => rand() * 2 - 1);
}
function start() {
  const rand = rng(7);
  return Float64Array.from({ length: N }, () => rand() * 4 - 2);
}

/**
 * θ_global after the given outer steps, in float64: each step averages, over its contributors'
 * slots, the pseudo-gradient θ_global − (H steps of SGD from θ_global), then takes torch's SGD
 * step with Nesterov momentum.
 */
function replay(contributorSlots) {
  const theta = Float64Array.from(start(), (x) => Math.fround(x));
  const buf = new Float64Array(N);
  const targets = new Map();
  contributorSlots.forEach((slots, i) => {
    const delta = new Float64Array(N);
    for (const s of slots) {
      if (!targets.has(s)) targets.set(s, target(s));
      const c = targets.get(s);
      for (let k = 0; k < N; k++) {
        let x = theta[k];
        for (let h = 0; h < H; h++) x -= INNER_LR * a[k] * (x - c[k]);
        delta[k] += (theta[k] - x) / slots.length;
      }
    }
    for (let k = 0; k < N; k++) {
      buf[k] = i === 0 ? delta[k] : OUTER.momentum * buf[k] + delta[k];
      theta[k] -= OUTER.lr * (delta[k] + OUTER.momentum * buf[k]);
    }
  });
  return theta;
}

module.exports = { SPECS, N, H, INNER_LR, OUTER, a, target, start, replay };
