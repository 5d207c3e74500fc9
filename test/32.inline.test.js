'use strict';
// The inline path (docs/tuning.md#the-inline-path): a small call on a Gloo communicator with
// nothing queued or in flight runs on the calling thread and returns a settled Work. These
// check that it keeps issue order, that its errors are those of the queued path (TIMEOUT,
// PEER_LOST naming the rank, MISMATCH in detail mode, ABORTED once broken), that the path is
// really taken (comm.stats()'s `inline`), and that the threshold is validated. The ranks'
// checks run in test/workers/inline.js.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded, spawnRanks, describeRanks } = require('./helpers/launch');
const { assertCases, parseCases, launched } = require('./helpers/cases');
const { resolveTuning, DEFAULT_INLINE_BYTES } = require('../dist/core/tuning');

const SHARED = [
  'idle small calls run inline',
  'larger calls, own timeouts and asynchronous-pair calls are queued',
  'an inline-eligible call after queued ones waits for them',
  'a pending receive keeps the next call queued',
  'a second communicator turns the default off',
];

describe('32 the inline path', function () {
  describe('the threshold', function () {
    it("is off by default, 'auto' is DEFAULT_INLINE_BYTES, off in the process that hosts the store, the option over the variable", function () {
      assert.equal(resolveTuning(undefined, {}, 2).inlineBytes, 0);
      assert.equal(resolveTuning({ inlineBytes: 'auto' }, {}, 2).inlineBytes, DEFAULT_INLINE_BYTES);
      assert.equal(resolveTuning(undefined, { COLLECTIVES_INLINE_BYTES: 'auto' }, 2).inlineBytes, DEFAULT_INLINE_BYTES);
      assert.equal(resolveTuning(undefined, {}, 2, true).inlineBytes, 0);
      assert.equal(resolveTuning({ inlineBytes: 99 }, {}, 2, true).inlineBytes, 0);
      assert.equal(resolveTuning(undefined, { COLLECTIVES_INLINE_BYTES: '0' }, 2).inlineBytes, 0);
      assert.equal(resolveTuning(undefined, { COLLECTIVES_INLINE_BYTES: '4096' }, 2).inlineBytes, 4096);
      assert.equal(resolveTuning({ inlineBytes: 8 }, { COLLECTIVES_INLINE_BYTES: '4096' }, 2).inlineBytes, 8);
    });

    it('refuses a bad value with INVALID_ARGUMENT naming the option or the variable', async function () {
      for (const [value, name] of [[-1, 'RangeError'], [1.5, 'TypeError'], ['64', 'TypeError'], [2 ** 53, 'RangeError']]) {
        assert.throws(() => resolveTuning({ inlineBytes: value }, {}, 1), (e) => e.name === name && e.code === 'INVALID_ARGUMENT' && /^options\.gloo\.inlineBytes: /.test(e.message), String(value));
      }
      for (const value of ['-1', '1.5', '64K', 'off']) {
        assert.throws(() => resolveTuning(undefined, { COLLECTIVES_INLINE_BYTES: value }, 1), (e) => e.code === 'INVALID_ARGUMENT' && /^COLLECTIVES_INLINE_BYTES: /.test(e.message) && e.message.includes(value), value);
      }
      const { init } = require('../dist');
      await assert.rejects(init({ worldSize: 1, masterPort: 0, gloo: { inlineBytes: -5 } }), (e) => e instanceof RangeError && e.code === 'INVALID_ARGUMENT' && /options\.gloo\.inlineBytes/.test(e.message));
    });
  });

  it('runs idle small calls inline, queues the rest in issue order, and fails a call nobody joins with TIMEOUT', async function () {
    this.timeout(60000);
    const res = await launchWorker('inline.js', { nproc: 2, args: ['main'], env: { COLLECTIVES_INLINE_BYTES: 'auto' }, killAfterMs: 50000 });
    assertCases(res.stdout, [0, 1], (r) => [...SHARED, r === 0 ? 'a peer that never calls: TIMEOUT, the thread blocked until then' : 'waits without calling'], launched(res));
    assertSucceeded(res, 'inline worker on 2 ranks');
  });

  it('rejects a detail-mode mismatch with MISMATCH and the same message as the queued path', async function () {
    this.timeout(60000);
    const res = await launchWorker('inline.js', { nproc: 2, args: ['mismatch'], env: { COLLECTIVES_DEBUG: 'detail' }, killAfterMs: 50000 });
    assertCases(res.stdout, [0, 1], ['MISMATCH as on the queued path'], launched(res));
    assertSucceeded(res, 'inline mismatch worker on 2 ranks');
  });

  it('reports a killed peer with PEER_LOST naming it, as the queued path does', async function () {
    this.timeout(60000);
    const seen = {};
    for (const [path, env] of [['inline', { COLLECTIVES_INLINE_BYTES: 'auto' }], ['queued', {}]]) {
      const [r0, r1] = await spawnRanks('inline.js', { nproc: 2, args: ['peer-lost'], env, killAfterMs: 25000 });
      const all = describeRanks([r0, r1]);
      assert.equal(r1.signal, 'SIGKILL', all);
      assert.equal(r0.code, 0, all);
      const [c] = assertCases(parseCases(r0.stdout, 0), [0], ['a killed peer'], all).get(0);
      seen[path] = c.value;
    }
    for (const [path, v] of Object.entries(seen)) {
      const ctx = `${path}: ${JSON.stringify(v)}`;
      assert.equal(v.inline, path === 'inline' ? 1 : 0, ctx);
      assert.equal(v.code, 'PEER_LOST', ctx);
      assert.equal(v.peerRank, 1, ctx);
      assert.equal(v.operation, 'allReduce', ctx);
      assert.match(v.message, /^allReduce on rank 0: allReduce: .*\(rank 1 was lost\)$/, ctx);
      assert.ok(v.ms < 10000, ctx);
      assert.equal(v.next.code, 'ABORTED', ctx);
      assert.match(v.next.message, /^barrier on rank 0: barrier: the communicator was broken by a PEER_LOST in allReduce #2; create a new one$/, ctx);
    }
    // The same words but for the addresses and ports Gloo names.
    const shape = (m) => m.replace(/\[[^\]]*\]:\d+/g, 'ADDR');
    assert.equal(shape(seen.inline.message), shape(seen.queued.message));
  });
});
