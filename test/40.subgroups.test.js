'use strict';
// split() and subgroup() across 4 real rank processes; the checks run in
// test/workers/subgroups.js.

const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, launched } = require('./helpers/cases');

const { SUBGROUP_CASES } = require('./helpers/subgroup-cases');

describe('40 subgroups', function () {
  it('splits by color and key, nests, and runs subgroup and parent work interleaved', async function () {
    this.timeout(60000);
    const res = await launchWorker('subgroups.js', { nproc: 4, killAfterMs: 50000 });
    assertCases(res.stdout, [0, 1, 2, 3], SUBGROUP_CASES, launched(res));
    assertSucceeded(res, 'subgroups worker on 4 ranks');
  });
});
