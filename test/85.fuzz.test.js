'use strict';
// Bad input never crashes or hangs: seeded random invalid calls on 2 real
// ranks (test/workers/fuzz.js), then exact results from valid calls.
// COLLECTIVES_FULL=1 makes 100,000 calls instead of 10,000;
// COLLECTIVES_SEED picks the sequence.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, launched } = require('./helpers/cases');

const FULL = process.env.COLLECTIVES_FULL === '1';
const COUNT = FULL ? 100000 : 10000;
const SEED = Number(process.env.COLLECTIVES_SEED ?? 0x5eed);

describe('85 fuzz', function () {
  it(`refuses ${COUNT.toLocaleString('en')} random invalid calls with TypeError, RangeError or CollectiveError, then computes exactly`, async function () {
    this.timeout(FULL ? 300000 : 60000);
    const res = await launchWorker('fuzz.js', { nproc: 2, args: [String(SEED), String(COUNT)], killAfterMs: FULL ? 280000 : 50000 });
    assertCases(res.stdout, [0, 1], ['invalid calls are refused', 'valid calls after the fuzz'], `COLLECTIVES_SEED=${SEED}\n${launched(res)}`);
    assertSucceeded(res, `fuzz with COLLECTIVES_SEED=${SEED}`);
    assert.doesNotMatch(res.stderr, /Segmentation|Abort|terminate called|FATAL/, res.stderr);
    const line = /\[rank0\]: (rank 0: fuzz .*)/.exec(res.stdout);
    if (line) console.log(`      ${line[1]}`);
  });
});
