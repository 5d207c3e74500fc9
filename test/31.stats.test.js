'use strict';
// comm.stats(): calls, bytes and time per operation, against formulas computed in the worker
// (test/workers/stats.js) on real ranks.

const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, launched } = require('./helpers/cases');

const CASES = [
  'each collective counts its calls and bytes',
  'quantized collectives count their encoded slots',
  'send and recv count their buffers; reset starts from zero',
];

describe('31 stats', function () {
  for (const nproc of [1, 2, 3]) {
    it(`counts what each rank sends and receives on ${nproc} rank${nproc > 1 ? 's' : ''}`, async function () {
      this.timeout(60000);
      const res = await launchWorker('stats.js', { nproc, killAfterMs: 50000 });
      assertCases(res.stdout, [...Array(nproc).keys()], CASES, launched(res));
      assertSucceeded(res, `stats on ${nproc} ranks`);
    });
  }
});
