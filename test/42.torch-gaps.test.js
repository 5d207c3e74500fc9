'use strict';
// What a torch.distributed user reaches for: gather / scatter, broadcastObject /
// allGatherObject, monitoredBarrier, bitwise reductions, host send/recv in group(),
// localRank / localSize and comm.store, on real ranks (test/workers/torch-gaps.js), and
// their bad arguments on one rank.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, launched, ranksOf } = require('./helpers/cases');
const { oneRankCommunicator, refuses } = require('./helpers/refuses');

function cases(size) {
  return [
    'gather: the root holds every block in rank order; bytes counted',
    'scatter: block r of the root input lands on rank r',
    'broadcastObject: the root value on every rank',
    'allGatherObject: every rank value in rank order, lengths differing',
    'bitwise reductions on integer dtypes',
    ...(size > 1 ? ['group: a host ring exchange completes with the group'] : []),
    'localRank and localSize',
    'store: set, get, add, wait under the communicator namespace',
    'monitoredBarrier: all arrive',
    ...(size > 1 ? ['monitoredBarrier names the rank that did not arrive'] : []),
  ];
}

describe('42 torch.distributed gaps', function () {
  for (const nproc of [1, 3]) {
    it(`gather, scatter, objects, bitwise ops, host groups, local ranks, store, monitoredBarrier on ${nproc} rank${nproc > 1 ? 's' : ''}`, async function () {
      this.timeout(90000);
      const res = await launchWorker('torch-gaps.js', { nproc, killAfterMs: 80000 });
      assertCases(res.stdout, ranksOf(nproc), cases(nproc), launched(res));
      assertSucceeded(res, `torch-gaps on ${nproc} ranks`);
    });
  }

  describe('bad arguments', function () {
    const one = oneRankCommunicator();
    let comm;
    before(function () {
      comm = one.comm;
    });

    it('gather and scatter check the root-only buffer and the lengths', function () {
      refuses(() => comm.gather(new Float32Array(2), null), TypeError, 'output');
      refuses(() => comm.gather(new Float32Array(2), new Float32Array(3)), RangeError, 'output');
      refuses(() => comm.gather(new Float32Array(2), new Float64Array(2)), TypeError, 'output');
      refuses(() => comm.gather(new Float32Array(2), new Float32Array(2), { root: 1 }), RangeError, 'options.root');
      refuses(() => comm.gather(new Float32Array(2), new Float32Array(2), { op: 'sum' }), TypeError, 'options.op');
      refuses(() => comm.scatter(null, new Int32Array(2)), TypeError, 'input');
      refuses(() => comm.scatter(new Int32Array(3), new Int32Array(2)), RangeError, 'input');
      refuses(() => comm.scatter(new Int32Array(2), 'x'), TypeError, 'output');
    });

    it('bitwise ops are refused on floating dtypes, naming options.op', function () {
      for (const op of ['band', 'bor', 'bxor']) {
        refuses(() => comm.allReduce(new Float32Array(2), { op }), RangeError, 'options.op');
        refuses(() => comm.reduce(new Uint16Array(2), { op, dtype: 'bfloat16' }), RangeError, 'options.op');
        refuses(() => comm.reduceScatter(new Float64Array(2), new Float64Array(2), { op }), RangeError, 'options.op');
      }
      refuses(() => comm.allReduce(new Int32Array(2), { op: 'bnot' }), TypeError, 'options.op');
    });

    it('object collectives refuse what JSON would not carry unchanged, naming the argument', function () {
      const cyclic = { a: 1 };
      cyclic.self = cyclic;
      for (const [bad, name] of [
        [undefined, 'value'],
        [() => 1, 'value'],
        [NaN, 'value'],
        [{ n: Infinity }, 'value.n'],
        [{ when: new Date(0) }, 'value.when'],
        [new Map(), 'value'],
        [[1, 2n], 'value[1]'],
        [cyclic, 'value.self'],
        [{ f: Symbol('s') }, 'value.f'],
        [new Float32Array(2), 'value'],
      ]) {
        refuses(() => comm.broadcastObject(bad), TypeError, name);
        refuses(() => comm.allGatherObject(bad), TypeError, name);
      }
      refuses(() => comm.broadcastObject(1, { root: 2 }), RangeError, 'options.root');
    });

    it('monitoredBarrier and the store check their arguments', async function () {
      refuses(() => comm.monitoredBarrier({ waitAll: 1 }), TypeError, 'options.waitAll');
      refuses(() => comm.monitoredBarrier({ timeoutMs: -1 }), RangeError, 'options.timeoutMs');
      refuses(() => comm.monitoredBarrier({ wait: true }), TypeError, 'options.wait');
      for (const [call, Kind, name] of [
        [() => comm.store.set('', 'x'), TypeError, 'key'],
        [() => comm.store.set('k', 5), TypeError, 'value'],
        [() => comm.store.add('k', 1.5), TypeError, 'amount'],
        [() => comm.store.wait([]), TypeError, 'keys'],
        [() => comm.store.get('k', -1), RangeError, 'timeoutMs'],
        [() => comm.store.set('k'.repeat(5000), 'x'), RangeError, 'key'],
      ]) {
        await assert.rejects(call(), (err) => {
          assert.ok(err instanceof Kind, `${err && err.name}: ${err && err.message}`);
          assert.equal(err.code, 'INVALID_ARGUMENT');
          assert.ok(err.message.startsWith(`${name}: expected`), err.message);
          return true;
        });
      }
      // A single rank: the world is its own host and the store answers.
      assert.equal(comm.localRank, 0);
      assert.equal(comm.localSize, 1);
      assert.equal(await comm.store.add('n', 41), 41);
      assert.deepEqual(await comm.allGatherObject({ a: [1] }), [{ a: [1] }]);
      await comm.monitoredBarrier();
    });
  });
});
