'use strict';
// The choice between Gloo's synchronous and asynchronous modes and between
// algorithms: every path gives the same exact results (the collectives worker
// checks each element against values it computes itself), the choice follows
// the documented policy, and the knobs are validated.

const assert = require('node:assert/strict');
const os = require('node:os');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, collectivesCases, ranksOf, launched } = require('./helpers/cases');
const { resolveTuning } = require('../dist/core/tuning');

const MiB = 1 << 20;

function algorithms(nproc, queries, env = {}) {
  return launchWorker('algorithms.js', { nproc, args: [JSON.stringify(queries)], env }).then((res) => {
    const cases = assertCases(res.stdout, ranksOf(nproc), ['algorithm choices'], launched(res));
    assertSucceeded(res, `algorithms on ${nproc} ranks`);
    return cases.get(0)[0].value;
  });
}

describe('22 algorithms', function () {
  describe('every mode gives exact results', function () {
    const modes = [
      ['Gloo default (asynchronous) mode everywhere', { COLLECTIVES_GLOO_MODE: 'async' }],
      ['synchronous ring all-reduce at every size', { COLLECTIVES_ALLREDUCE_ALGORITHM: 'ring' }],
      ['synchronous halving-doubling all-reduce at every size', { COLLECTIVES_ALLREDUCE_ALGORITHM: 'halving-doubling' }],
    ];
    for (const [name, env] of modes) {
      for (const nproc of [2, 3]) {
        it(`${name}, ${nproc} ranks`, async function () {
          this.timeout(90000);
          const res = await launchWorker('collectives.js', { nproc, env, killAfterMs: 80000 });
          assertCases(res.stdout, ranksOf(nproc), collectivesCases(nproc), launched(res));
          assertSucceeded(res, `collectives with ${JSON.stringify(env)}`);
        });
      }
    }
  });

  describe('the choice', function () {
    it('uses synchronous pairs for small messages and names each choice', async function () {
      const got = await algorithms(2, [
        ['all_reduce', 8],
        ['all_reduce', 4096],
        ['reduce_scatter', 4096],
        ['all_gather', 4096],
        ['broadcast', 4096],
        ['barrier', 0],
        ['alltoall', 4096],
        ['reduce', 4096],
      ], { COLLECTIVES_BUSY_POLL: '0' });
      assert.deepEqual(got, [
        'sync ring',
        'sync halving-doubling',
        'sync halving-doubling',
        'sync ring',
        'sync one-to-all',
        'sync all-to-one',
        'async',
        'async',
      ]);
    });

    it('splits an all-reduce larger than the socket buffers into chunks, and leaves larger reduce-scatters asynchronous', async function () {
      const [big, rs] = await algorithms(2, [['all_reduce', 1024 * MiB], ['reduce_scatter', 1024 * MiB]], {
        COLLECTIVES_BUSY_POLL: '0',
      });
      const m = /^sync halving-doubling, (\d+)-byte chunks$/.exec(big);
      assert.ok(m, big);
      const chunk = Number(m[1]);
      assert.ok(chunk > 0 && chunk < 1024 * MiB && chunk % 4 === 0, `chunk ${chunk}`);
      assert.equal(rs, 'async alltoall+reduce');
    });

    it('follows COLLECTIVES_GLOO_MODE=async and COLLECTIVES_BUSY_POLL=1', async function () {
      assert.deepEqual(await algorithms(2, [['all_reduce', 8], ['all_gather', 64]], { COLLECTIVES_GLOO_MODE: 'async' }), [
        'async ring',
        'async',
      ]);
      assert.deepEqual(await algorithms(2, [['all_reduce', 4096]], { COLLECTIVES_BUSY_POLL: '1' }), [
        'sync halving-doubling busy-poll',
      ]);
    });

    it("takes the methods' names as well as nccl-tests' names", async function () {
      const pairs = [
        ['all_reduce', 'allReduce'],
        ['reduce_scatter', 'reduceScatter'],
        ['all_gather', 'allGather'],
        ['broadcast', 'broadcast'],
        ['reduce', 'reduce'],
        ['alltoall', 'allToAll'],
        ['barrier', 'barrier'],
      ];
      const answers = await algorithms(2, pairs.flatMap(([test, method]) => [[test, 4096], [method, 4096]]));
      pairs.forEach(([test, method], i) => assert.equal(answers[2 * i + 1], answers[2 * i], `${method} vs ${test}`));
    });

    it('answers "local" on one rank and refuses unknown operation names', async function () {
      const { init } = require('../dist');
      const comm = await init({ rank: 0, worldSize: 1, masterPort: 0 });
      try {
        assert.equal(comm.algorithm('all_reduce', 8), 'local');
        assert.throws(() => comm.algorithm('allreduce', 8), { code: 'INVALID_ARGUMENT', message: /allreduce/ });
        assert.throws(() => comm.algorithm('all_reduce', -1), { code: 'INVALID_ARGUMENT', message: /bytes/ });
      } finally {
        await comm.destroy();
      }
    });
  });

  describe('resolveTuning', function () {
    it('defaults to auto, and busy-polls only when every local rank has two cores', function () {
      const cores = os.availableParallelism();
      assert.deepEqual(resolveTuning(undefined, {}, 1), {
        mode: 'auto',
        allReduceAlgorithm: 'auto',
        busyPoll: cores >= 2,
        inlineBytes: 0,
      });
      assert.equal(resolveTuning(undefined, {}, cores).busyPoll, false);
    });

    it('prefers options over the environment', function () {
      const env = { COLLECTIVES_GLOO_MODE: 'async', COLLECTIVES_ALLREDUCE_ALGORITHM: 'ring', COLLECTIVES_BUSY_POLL: '1' };
      assert.deepEqual(resolveTuning(undefined, env, 64), { mode: 'async', allReduceAlgorithm: 'ring', busyPoll: true, inlineBytes: 0 });
      assert.deepEqual(resolveTuning({ mode: 'sync', allReduceAlgorithm: 'halving-doubling', busyPoll: false }, env, 1), {
        mode: 'sync',
        allReduceAlgorithm: 'halving-doubling',
        busyPoll: false,
        inlineBytes: 0,
      });
    });

    it('names the variable or option and the allowed values when a value is wrong', function () {
      assert.throws(() => resolveTuning(undefined, { COLLECTIVES_GLOO_MODE: 'fast' }, 1), {
        code: 'INVALID_ARGUMENT',
        message: /COLLECTIVES_GLOO_MODE.*'auto', 'async', 'sync'.*fast/,
      });
      assert.throws(() => resolveTuning(undefined, { COLLECTIVES_ALLREDUCE_ALGORITHM: 'tree' }, 1), {
        code: 'INVALID_ARGUMENT',
        message: /COLLECTIVES_ALLREDUCE_ALGORITHM.*tree/,
      });
      assert.throws(() => resolveTuning(undefined, { COLLECTIVES_BUSY_POLL: 'yes' }, 1), {
        code: 'INVALID_ARGUMENT',
        message: /COLLECTIVES_BUSY_POLL/,
      });
      assert.throws(() => resolveTuning({ busyPoll: 'yes' }, {}, 1), { name: 'TypeError', message: /options\.gloo\.busyPoll/ });
      assert.throws(() => resolveTuning('fast', {}, 1), { name: 'TypeError', message: /options\.gloo/ });
    });
  });
});
