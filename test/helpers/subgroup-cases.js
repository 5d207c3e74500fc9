'use strict';
// The cases test/workers/subgroups.js reports, the same on every rank: test/40 runs it on Gloo,
// test/47 on the MPI engine.

const SUBGROUP_CASES = [
  'split(rank % 2)',
  'parent and subgroup work interleaved',
  'subgroup([1, 2, 3])',
  'split(0, -rank)',
  'split with a null color',
  'nested splits',
  'parents after their children are destroyed',
];

module.exports = { SUBGROUP_CASES };
