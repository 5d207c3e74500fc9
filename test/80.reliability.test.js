'use strict';
// Failures become errors, not hangs: a rank SIGKILLed while 4 ranks stream
// collectives, a rank that never makes a call, ranks that call different
// collectives (with and without COLLECTIVES_DEBUG=detail), and a pending
// buffer transferred to another thread. The checks run in
// test/workers/reliability.js. COLLECTIVES_FULL=1 runs the kill case 20
// times instead of 2.

const assert = require('node:assert/strict');
const { launchWorker, spawnRanks, describeRanks } = require('./helpers/launch');
const { assertCases, parseCases } = require('./helpers/cases');

const FULL = process.env.COLLECTIVES_FULL === '1';
const KILL_RUNS = FULL ? 20 : 2;
const SEED = Number(process.env.COLLECTIVES_SEED ?? 0x5eed);

/** Pids the ranks printed. */
function pids(text) {
  return [...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Fails if any of `list` still runs (after a short grace for the exit to land). */
async function assertNoneLeft(list, context) {
  for (let i = 0; i < 20 && list.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  const left = list.filter(alive);
  assert.deepEqual(left, [], `processes left running: ${left.join(', ')}\n${context}`);
}

// The cases each mode of test/workers/reliability.js reports on a rank that
// takes part (the killed rank reports none).
const MISMATCH_CASES = [
  'before any mismatch',
  ...['operation', 'dtype', 'count', 'root', 'reduce op', 'reduce root', 'allGather count', 'barrier against all-reduce', 'quantized against plain', 'quantized format', 'quantized block size'].map(
    (name) => `${name} mismatch`,
  ),
  'allToAllV with per-rank counts',
  'a subgroup in detail mode',
];
const RELIABILITY_CASES = {
  'peer-kill': ['every call resolves exactly or fails with the lost peer'],
  missing: (r) => [r === 2 ? 'never calls' : 'the all-reduce a rank never joins'],
  mismatch: MISMATCH_CASES,
  'no-debug-mismatch': ['a mismatched call without debug mode'],
  'count-mismatch': ['allToAll', 'allToAll with a timeoutMs', 'allToAllV', 'allReduce'].map((n) => `${n} count mismatch without debug mode`),
  transfer: ['a pending buffer posted to another thread', 'a detached buffer'],
};

function assertPassed(results, expected, context) {
  const survivors = results.filter((r) => !(r.signal === 'SIGKILL' && !r.killed)); // not the victim
  const cases = new Map(survivors.map((r) => [r.rank, parseCases(r.stdout, r.rank).get(r.rank) ?? []]));
  assertCases(cases, survivors.map((r) => r.rank), expected, context);
  for (const r of survivors) assert.equal(r.code, 0, `rank ${r.rank} failed\n${context}`);
}

describe('80 reliability', function () {
  it('refuses an unknown debug mode, from the option or from COLLECTIVES_DEBUG', async function () {
    const { init } = require('../dist');
    await assert.rejects(init({ worldSize: 1, debug: 'verbose' }), (e) => e instanceof TypeError && e.code === 'INVALID_ARGUMENT' && /^options\.debug/.test(e.message));
    const saved = process.env.COLLECTIVES_DEBUG;
    process.env.COLLECTIVES_DEBUG = 'everything';
    try {
      await assert.rejects(init({ worldSize: 1 }), (e) => e instanceof TypeError && /^COLLECTIVES_DEBUG/.test(e.message));
      process.env.COLLECTIVES_DEBUG = 'DETAIL';
      const world = await init({ worldSize: 1 });
      const buf = Float32Array.of(1, 2);
      await world.allReduce(buf);
      assert.deepEqual([...buf], [1, 2]);
      await world.destroy();
    } finally {
      if (saved === undefined) delete process.env.COLLECTIVES_DEBUG;
      else process.env.COLLECTIVES_DEBUG = saved;
    }
  });

  it(`SIGKILL of one of 4 streaming ranks fails every other rank's work with PEER_LOST or TIMEOUT naming it (${KILL_RUNS} seeded runs)`, async function () {
    this.timeout(KILL_RUNS * 20000 + 10000);
    let named = 0;
    let failures = 0;
    let peerLost = 0;
    for (let run = 0; run < KILL_RUNS; run++) {
      const seed = SEED + run;
      const results = await spawnRanks('reliability.js', {
        nproc: 4,
        args: ['peer-kill', String(seed)],
        killAfterMs: 15000,
      });
      const context = `seed ${seed} (COLLECTIVES_SEED=${SEED}, run ${run + 1} of ${KILL_RUNS})\n${describeRanks(results)}`;
      const victims = results.filter((r) => r.signal === 'SIGKILL' && !r.killed);
      assert.equal(victims.length, 1, `expected exactly one rank to be killed\n${context}`);
      assertPassed(results, RELIABILITY_CASES['peer-kill'], context);
      await assertNoneLeft(results.flatMap((r) => pids(r.stdout)), context);
      for (const r of results) {
        const m = /(\d+) failed \((\d+) PEER_LOST, \d+ TIMEOUT\), (\d+) named/.exec(r.stdout);
        if (m) {
          failures += Number(m[1]);
          peerLost += Number(m[2]);
          named += Number(m[3]);
        }
      }
    }
    console.log(`      ${KILL_RUNS} runs: ${failures} failed calls, ${peerLost} PEER_LOST (${named} naming the lost rank), ${failures - peerLost} TIMEOUT`);
  });

  for (const mode of ['default', 'per-call']) {
    const pairs = mode === 'default' ? 'the default synchronous pairs' : "a per-call timeoutMs (Gloo's asynchronous pairs)";
    it(`a killed peer: PEER_LOST names it with ${pairs}, and later calls fail at once with ABORTED`, async function () {
      this.timeout(40000);
      const [r0, r1] = await spawnRanks('peer-lost.js', { nproc: 2, args: [mode], killAfterMs: 30000 });
      const all = describeRanks([r0, r1]);
      assert.equal(r1.signal, 'SIGKILL', all);
      assertCases(new Map([[0, parseCases(r0.stdout, 0).get(0) ?? []]]), [0], ['a killed peer fails the allReduce with PEER_LOST', 'the broken communicator'], all);
      assert.equal(r0.code, 0, all);
    });
  }

  const LAUNCHER_RUNS = FULL ? 20 : 1;
  it(`the launcher exits non-zero and leaves no process when one of 4 streaming ranks is SIGKILLed (${LAUNCHER_RUNS} seeded runs)`, async function () {
    this.timeout(LAUNCHER_RUNS * 25000);
    for (let run = 0; run < LAUNCHER_RUNS; run++) {
      const seed = SEED + run;
      const res = await launchWorker('reliability.js', { nproc: 4, args: ['stream-kill', String(seed)], killAfterMs: 20000 });
      const context = `seed ${seed}\n--- stderr ---\n${res.stderr}\n--- stdout ---\n${res.stdout}`;
      assert.equal(res.killed, false, `the launcher hung\n${context}`);
      // 128 + SIGKILL: the launcher reports the killed rank, not a rank it stopped.
      assert.equal(res.code, 137, context);
      const list = pids(res.stdout);
      assert.equal(list.length, 4, context);
      await assertNoneLeft(list, context);
    }
  });

  it('a rank that never calls makes the others reject with TIMEOUT at the configured timeout, not later', async function () {
    this.timeout(30000);
    const results = await spawnRanks('reliability.js', { nproc: 3, args: ['missing', '2000'], killAfterMs: 20000 });
    const context = describeRanks(results);
    assertPassed(results, RELIABILITY_CASES.missing, context);
    assert.equal(results[2].code, 0, context);
    for (const r of results.slice(0, 2)) console.log(`      ${/missing call: .*/.exec(r.stdout)?.[0]}`);
  });

  it('COLLECTIVES_DEBUG=detail: ranks that call different collectives all reject with MISMATCH naming each call, and stay usable', async function () {
    this.timeout(30000);
    const res = await spawnRanks('reliability.js', {
      nproc: 3,
      args: ['mismatch'],
      env: { COLLECTIVES_DEBUG: 'detail' },
      killAfterMs: 20000,
    });
    assertPassed(res, RELIABILITY_CASES.mismatch, describeRanks(res));
    console.log(`      ${/mismatch message: (.*)/.exec(res[0].stdout)?.[1]}`);
  });

  it('without debug mode, a mismatched call rejects on every rank instead of mixing data', async function () {
    this.timeout(30000);
    const res = await spawnRanks('reliability.js', { nproc: 2, args: ['no-debug-mismatch'], killAfterMs: 20000 });
    assertPassed(res, RELIABILITY_CASES['no-debug-mismatch'], describeRanks(res));
  });

  it('without debug mode, count mismatches reject with MISMATCH instead of aborting the process', async function () {
    this.timeout(30000);
    const res = await spawnRanks('reliability.js', { nproc: 2, args: ['count-mismatch'], killAfterMs: 20000 });
    for (const r of res) assert.equal(r.signal, null, `rank ${r.rank} was killed by ${r.signal}\n${describeRanks(res)}`);
    assertPassed(res, RELIABILITY_CASES['count-mismatch'], describeRanks(res));
    assert.ok(res.some((r) => /allReduce count mismatch: CollectiveError \(MISMATCH\)/.test(r.stdout)), `no rank said MISMATCH for the all-reduce\n${describeRanks(res)}`);
  });

  it("transferring a pending operation's buffer with postMessage neither detaches nor corrupts it; a detached buffer is refused", async function () {
    this.timeout(30000);
    const res = await spawnRanks('reliability.js', { nproc: 2, args: ['transfer'], killAfterMs: 20000 });
    assertPassed(res, RELIABILITY_CASES.transfer, describeRanks(res));
  });
});
