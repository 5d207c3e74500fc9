'use strict';
// Asynchronous behaviour across 2 real rank processes: ordering of in-flight
// work, a free JS thread, destroy(), abort() and per-call timeouts. The
// checks run in test/workers/async.js.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded, spawnRanks, describeRanks } = require('./helpers/launch');
const { assertCases, parseCases, launched } = require('./helpers/cases');

const BOTH = ['16 operations in flight', 'isCompleted and isFailed', 'the JS thread stays free during a 64 MiB allReduce', 'bad tags', 'destroy() with work pending'];
// Rank 1 is the one whose peer never joins.
const ASYNC_CASES = (r) => (r === 1 ? [...BOTH, 'abort() with work pending', 'a per-call timeout'] : BOTH);

describe('30 asynchronous work', function () {
  it('orders in-flight work, keeps the JS thread free, and ends work with destroy, abort and timeouts', async function () {
    this.timeout(60000);
    const res = await launchWorker('async.js', { nproc: 2, killAfterMs: 50000 });
    assertCases(res.stdout, [0, 1], ASYNC_CASES, launched(res));
    assertSucceeded(res, 'async worker on 2 ranks');
    // The process must also end on its own once its work is done, even with
    // an aborted communicator whose thread is still inside Gloo.
    assert.ok(res.ms < 30000, `the ranks took ${res.ms} ms to exit`);
  });

  it('reports PEER_LOST to a rank whose peer is killed mid-collective, and still shuts down', async function () {
    this.timeout(40000);
    const [r0, r1] = await spawnRanks('peer-lost.js', { nproc: 2, killAfterMs: 30000 });
    const all = describeRanks([r0, r1]);
    assert.equal(r1.signal, 'SIGKILL', all);
    assertCases(parseCases(r0.stdout, 0), [0], ['a killed peer fails the allReduce with PEER_LOST', 'the broken communicator'], all);
    assert.equal(r0.code, 0, all);
  });

  it('a failed call carries the stack of where it was awaited, or of where it was issued with callSites', async function () {
    this.timeout(60000);
    const results = {};
    for (const sites of ['0', '1']) {
      const res = await launchWorker('call-sites.js', { nproc: 2, env: { COLLECTIVES_CALL_SITES: sites }, killAfterMs: 40000 });
      // Rank 1 only waits for rank 0's timeouts; rank 0 reports the stacks.
      const cases = assertCases(res.stdout, [0, 1], (r) => (r === 0 ? ['badOption', 'waited', 'awaited'] : []), launched(res));
      assertSucceeded(res, `call-sites worker, COLLECTIVES_CALL_SITES=${sites}`);
      results[sites] = Object.fromEntries(cases.get(0).map((c) => [c.case, c.value]));
    }
    const off = results['0'];
    assert.deepEqual(off.badOption, { name: 'TypeError', code: 'INVALID_ARGUMENT', message: 'options.callSites: expected a boolean, got "yes"' });
    // Off (the default): the awaiting functions, as async frames; nothing of the library's.
    assert.equal(off.waited.code, 'TIMEOUT');
    assert.match(off.waited.stack, /^CollectiveError: allReduce on rank 0: .*\n\s+at async stepWaited \(.*call-sites\.js:9:/);
    // The first call's TIMEOUT broke the communicator: the second fails at once.
    assert.equal(off.awaited.code, 'ABORTED');
    assert.match(off.awaited.stack, /\n\s+at async stepAwaited \(.*call-sites\.js:13:/);
    for (const s of [off.waited.stack, off.awaited.stack]) assert.doesNotMatch(s, /dist[\\/](errors|communicator|work)\.js/);
    // On: the issuing line, synchronously, under the library's method.
    const on = results['1'];
    assert.match(on.waited.stack, /\n\s+at Communicator\.allReduce .*\n\s+at stepWaited \(.*call-sites\.js:9:/);
    assert.match(on.awaited.stack, /\n\s+at Communicator\.broadcast .*\n\s+at stepAwaited \(.*call-sites\.js:13:/);
  });
});
