'use strict';
// What the device workers (test/workers/*-device.js) share: a small layout and its data, and the
// two comparisons of a device run with the host run — the bits, and the largest elementwise
// difference (0 on the stand-ins, which compute as the host does; on a GPU the kernels may round
// differently, and test/gpu/50 holds it to a tolerance instead of to the bits).

/** Two tensors whose sizes are not multiples of a block or of each other. */
const SPECS = [{ name: 'w', shape: [33, 7] }, { name: 'b', shape: [5] }];

/** n values of magnitude up to 5, different for every k (k = 0: the initial weights). */
const values = (n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * (1 + (i % 5)));

const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

/** A buffer's values in host memory (a DeviceBuffer copied out, a Float32Array as it is). */
const toHost = (b) => (b instanceof Float32Array ? b : b.copyTo(new Float32Array(b.length)));

function maxDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; // NaN on either side counts as the worst
  }
  return worst;
}

module.exports = { SPECS, values, bits, toHost, maxDiff };
