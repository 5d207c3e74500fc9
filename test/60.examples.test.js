'use strict';
// The examples a new user copies from must keep working as the README shows them.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded } = require('./helpers/launch');

const EXAMPLES = '../../examples/';

function lineOf(stdout, rank) {
  return stdout.split('\n').find((l) => l.startsWith(`[rank${rank}]: `)) ?? '';
}

describe('60 examples', function () {
  it('allreduce.js prints the sum on each of 4 ranks', async function () {
    const r = await launchWorker(EXAMPLES + 'allreduce.js', { nproc: 4 });
    assertSucceeded(r, 'examples/allreduce.js');
    for (let rank = 0; rank < 4; rank++) {
      assert.equal(lineOf(r.stdout, rank), `[rank${rank}]: rank ${rank} of 4: [10, 10, 10, 10]`);
    }
  });

  it('subgroups.js reduces within halves and broadcasts over the world', async function () {
    const r = await launchWorker(EXAMPLES + 'subgroups.js', { nproc: 4 });
    assertSucceeded(r, 'examples/subgroups.js');
    // Even ranks 0 + 2 = 2, odd ranks 1 + 3 = 4.
    for (let rank = 0; rank < 4; rank++) {
      const half = rank % 2 === 0 ? 2 : 4;
      assert.match(lineOf(r.stdout, rank), new RegExp(`rank ${rank >> 1} of 2 in its half; sum over the half ${half}, broadcast 42$`));
    }
  });

  it('overlap.js averages every bucket while computing the next', async function () {
    const r = await launchWorker(EXAMPLES + 'overlap.js', { nproc: 2 });
    assertSucceeded(r, 'examples/overlap.js');
    // Every rank's first gradient value is sin(rank + 0 + 0); the mean over 2 ranks:
    const expected = ((Math.fround(Math.sin(0)) + Math.fround(Math.sin(1))) / 2).toFixed(6);
    for (let rank = 0; rank < 2; rank++) {
      assert.equal(lineOf(r.stdout, rank), `[rank${rank}]: rank ${rank}: 8 buckets averaged, first value ${expected}`);
    }
  });

  it('gpu-step.js says why it does not run where there is no usable GPU, and exits cleanly', async function () {
    const { backends } = require('../dist');
    const b = backends();
    if (b.cuda.available && b.nccl.available) {
      console.log('      skipped: this machine has a GPU (test/45 runs the example on the stand-ins)');
      this.skip();
    }
    const r = await launchWorker(EXAMPLES + 'gpu-step.js', { nproc: 2 });
    assertSucceeded(r, 'examples/gpu-step.js');
    const reason = !b.cuda.available ? b.cuda.reason : b.nccl.reason;
    for (let rank = 0; rank < 2; rank++) assert.equal(lineOf(r.stdout, rank), `[rank${rank}]: gpu-step: no GPU run here: ${reason}`);
  });
});
