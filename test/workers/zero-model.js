'use strict';
// The synthetic model of the ZeRO tests (test/95.zero*.test.js): a few layers of a few hundred
// parameters, and gradients that are a function of each parameter's value, its index, the step
// and the rank, rounded to multiples of 2^-8 in [-1, 1]. Sums of up to 2^15 of them are exact
// in float32 in any order, so an average over N ranks is the exact sum divided once by N
// whatever order an engine adds in: ZeRO and DataParallel can be compared bit for bit.

const SPECS = [
  { name: 'embed.weight', shape: [24, 10] },
  { name: 'embed.bias', shape: [24] },
  { name: 'mid.weight', shape: [16, 24] },
  { name: 'mid.bias', shape: [16] },
  { name: 'norm.scale', shape: [5] },
  { name: 'wide.weight', shape: [40, 16] },
  { name: 'wide.bias', shape: [40] },
  { name: 'head.weight', shape: [3, 40] },
  { name: 'head.bias', shape: [3] },
];
/** The layers (stage 3's gather units) by name prefix; norm is small enough to persist. */
const LAYERS = [['embed.weight', 'embed.bias'], ['mid.weight', 'mid.bias'], ['norm.scale'], ['wide.weight', 'wide.bias'], ['head.weight', 'head.bias']];
const OPT = { lr: 1e-2, weightDecay: 0.01 };

function initialValue(name, i) {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return Math.fround(Math.sin(i * 0.37 + (h >>> 0) * 1e-6) * 0.5);
}

function initialize(set) {
  for (const t of set.tensors) {
    const v = set.view(t.name);
    for (let i = 0; i < t.size; i++) v[i] = initialValue(t.name, i);
  }
}

/** One rank's gradient of element i of a tensor whose parameter is p. */
function gradient(p, name, i, step, rank) {
  const x = Math.sin(p * 3 + i * 0.1 + step * 0.7 + rank * 1.3 + name.length);
  return Math.round(x * 256) / 256;
}

/** Writes this rank's gradients of tensor `name` into g, from its parameters p. */
function fill(g, p, name, step, rank) {
  for (let i = 0; i < g.length; i++) g[i] = gradient(p[i], name, i, step, rank);
}

/** The average over `n` ranks as the engines compute it: the exact float32 sum, divided once. */
function averaged(p, name, i, step, n) {
  let s = 0;
  for (let r = 0; r < n; r++) s += gradient(p, name, i, step, r);
  return Math.fround(s / n);
}

module.exports = { SPECS, LAYERS, OPT, initialize, gradient, fill, averaged };
