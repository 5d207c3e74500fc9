'use strict';
// A seeded xorshift32 generator for test data: the same numbers in every rank and every run,
// in [0, 1).

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

module.exports = { rng };
