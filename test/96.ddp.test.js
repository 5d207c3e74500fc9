'use strict';
// DataParallel: the bucket schedule alone (torch DDP's assignment rule, computed here by
// hand), then real ranks through the launcher (test/workers/ddp.js) against one process with
// the global batch, exact averages and the byte formulas.

const assert = require('node:assert/strict');
const { assignBuckets, ParameterSet } = require('../dist/training');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, launched } = require('./helpers/cases');

const DDP_CASES = [
  'DDP equals one process with the global batch',
  'DDP with AdamW stepped bucket by bucket equals one process with the global batch',
  'noSync accumulation equals one process with the global batch',
  'buckets start as they fill, in one order on every rank; stats count their bytes',
  "comm hook fp16 within the format's bound",
  "comm hook bf16 within the format's bound",
  "comm hook int8 within the format's bound",
  "comm hook int4 within the format's bound",
  "comm hook fp8 within the format's bound",
  'error feedback (int8): the running sum stays within one step of exact over 50 steps',
  'error feedback (int4): the running sum stays within one step of exact over 50 steps',
  'a different model is refused on every rank, naming the tensor',
  'a gradient never marked ready is named, and no rank hangs',
];

describe('96 DataParallel', function () {
  describe('bucket assignment', function () {
    const sizes = [300, 10, 2000, 50, 700, 5];
    const set = new ParameterSet(sizes.map((n, i) => ({ name: `t${i}`, shape: [n] })));
    // offsets: t0 0, t1 300, t2 310, t3 2310, t4 2360, t5 3060 (end 3065)

    it('fills buckets in reverse registration order, closing each once it reaches its cap', function () {
      // first cap 2800 bytes = 700 elements, then 4000 bytes = 1000 elements.
      const b = assignBuckets(set.tensors, { firstCapBytes: 2800, capBytes: 4000 });
      assert.deepEqual(
        b.map((x) => [x.names.join(','), x.begin, x.end]),
        [
          ['t5,t4', 2360, 3065], // 5 + 700 = 705 elements ≥ 700
          ['t3,t2', 310, 2360], // 50, then 2000: over the cap, closes with it
          ['t1,t0', 0, 310], // what is left
        ],
      );
      assert.deepEqual(b.map((x) => x.index), [0, 1, 2]);
    });

    it('gives a tensor larger than the cap a bucket of its own, and covers every element once', function () {
      const b = assignBuckets(set.tensors, { firstCapBytes: 4, capBytes: 4 });
      assert.deepEqual(b.map((x) => x.names.join(',')), ['t5', 't4', 't3', 't2', 't1', 't0']);
      let covered = 0;
      for (const x of b) covered += x.end - x.begin;
      assert.equal(covered, set.size);
    });

    it("with torch's defaults (25 MiB, first 1 MiB) a small model is one bucket", function () {
      const b = assignBuckets(set.tensors, { firstCapBytes: 1 << 20, capBytes: 25 << 20 });
      assert.equal(b.length, 1);
      assert.deepEqual([b[0].begin, b[0].end], [0, set.size]);
    });
  });

  for (const nproc of [2, 4]) {
    it(`on ${nproc} ranks: equals one process with the global batch, hooks within bounds, clear errors`, async function () {
      this.timeout(180000);
      const res = await launchWorker('ddp.js', { nproc, killAfterMs: 170000, env: { COLLECTIVES_DEBUG: 'detail' } });
      assertCases(res.stdout, [...Array(nproc).keys()], DDP_CASES, launched(res));
      assertSucceeded(res, `ddp worker on ${nproc} ranks`);
    });
  }
});
