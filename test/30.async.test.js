'use strict';
// Asynchronous behaviour across 2 real rank processes: ordering of in-flight
// work, a free JS thread, destroy(), abort() and per-call timeouts. The
// checks run in test/workers/async.js.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded, spawnRanks, describeRanks } = require('./helpers/launch');

describe('30 asynchronous work', function () {
  it('orders in-flight work, keeps the JS thread free, and ends work with destroy, abort and timeouts', async function () {
    this.timeout(60000);
    const res = await launchWorker('async.js', { nproc: 2, killAfterMs: 50000 });
    assertSucceeded(res, 'async worker on 2 ranks');
    for (const r of [0, 1]) assert.match(res.stdout, new RegExp(`\\[rank${r}\\]: rank ${r}: all \\d+ checks passed`));
    // The process must also end on its own once its work is done, even with
    // an aborted communicator whose thread is still inside Gloo.
    assert.ok(res.ms < 30000, `the ranks took ${res.ms} ms to exit`);
  });

  it('reports PEER_LOST to a rank whose peer is killed mid-collective, and still shuts down', async function () {
    this.timeout(40000);
    const [r0, r1] = await spawnRanks('peer-lost.js', { nproc: 2, killAfterMs: 30000 });
    const all = describeRanks([r0, r1]);
    assert.equal(r1.signal, 'SIGKILL', all);
    assert.equal(r0.code, 0, all);
    assert.match(r0.stdout, /rank 0: all \d+ checks passed/, all);
  });
});
