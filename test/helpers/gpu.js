'use strict';
// What the GPU suites (test/gpu) share: the error assertion, and their multi-GPU cases' ranks
// (one process per rank, rank r on device r, each running a script of its own that joins
// through a port chosen here, asserts, and exits non-zero on failure).

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const net = require('node:net');

/** An assert.throws validator: the error has `code` (and a message matching `pattern`). */
function isCode(code, pattern) {
  return (err) => {
    assert.equal(err.code, code, `code ${err.code}: ${err.message}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

/**
 * The DeviceBuffers a suite's tests allocate, freed after each test (`afterEach(freeAll)`):
 * `alloc(dtype, n, options)`, `dev(dtype, hostOrLength)` (holding `host`, or of n elements),
 * and `live`, the list, for buffers made elsewhere.
 */
function deviceBuffers() {
  const { DeviceBuffer } = require('../../dist');
  const live = [];
  const alloc = (dtype, n, options) => {
    const b = new DeviceBuffer(dtype, n, options);
    live.push(b);
    return b;
  };
  const dev = (dtype, hostOrLength) =>
    typeof hostOrLength === 'number' ? alloc(dtype, hostOrLength) : alloc(dtype, hostOrLength.length).copyFrom(hostOrLength);
  const freeAll = () => {
    for (const b of live.splice(0)) b.free();
  };
  return { live, alloc, dev, freeAll };
}

/** A TCP port free at the moment of asking, for the ranks' rendezvous. */
function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** Runs `code(rank, port)` (a script) in `ranks` processes at once; asserts every one exits 0. */
async function runRanks(ranks, code) {
  const port = await freePort();
  const run = (rank) =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['-e', code(rank, port)], { stdio: ['ignore', 'inherit', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('exit', (status) => resolve({ status, err }));
    });
  const results = await Promise.all(Array.from({ length: ranks }, (_, r) => run(r)));
  for (const r of results) assert.equal(r.status, 0, r.err);
}

module.exports = { deviceBuffers, freePort, isCode, runRanks };
