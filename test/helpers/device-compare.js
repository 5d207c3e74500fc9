'use strict';
// The largest elementwise difference between a device run's values and the host run's: on the
// stand-ins it is 0 (the same arithmetic), on a GPU the kernels may round differently, and
// test/gpu/50 holds it to a tolerance instead of to the bits.

function maxDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; // NaN on either side counts as the worst
  }
  return worst;
}

module.exports = { maxDiff };
