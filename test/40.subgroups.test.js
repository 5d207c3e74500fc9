'use strict';
// split() and subgroup() across 4 real rank processes; the checks run in
// test/workers/subgroups.js.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded } = require('./helpers/launch');

describe('40 subgroups', function () {
  it('splits by color and key, nests, and runs subgroup and parent work interleaved', async function () {
    this.timeout(60000);
    const res = await launchWorker('subgroups.js', { nproc: 4, killAfterMs: 50000 });
    assertSucceeded(res, 'subgroups worker on 4 ranks');
    for (const r of [0, 1, 2, 3]) assert.match(res.stdout, new RegExp(`\\[rank${r}\\]: rank ${r}: all \\d+ checks passed`));
  });
});
