'use strict';
// Elastic training: real workers started by `collectives-run --elastic`, one of which is killed
// (SIGKILL) or stopped (SIGSTOP, then SIGCONT) while the outer all-reduce is in flight. The
// survivors' θ_global is compared bit for bit after every outer step, and the final θ_global
// against a float64 replay of DiLoCo computed here from whose inner phases each outer step
// averaged (test/helpers/elastic-problem.js).

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { replay } = require('./helpers/elastic-problem');
const { parse, checkEveryStep, maxDiff, slotOf } = require('./helpers/elastic-runs');
const { Elastic, ElasticDiLoCo, ParameterSet } = require('../dist/training');

function elastic(mode, { nproc = 4, steps = 60, launcherArgs = ['--max-restarts', '1'], killAfterMs = 60000 } = {}) {
  return launchWorker('elastic-diloco.js', { nproc, args: [mode, String(steps)], launcherArgs: ['--elastic', ...launcherArgs], killAfterMs });
}

/** Every outer step checked (checkEveryStep); returns the contributors' slots per outer step. */
function checkOuterSteps(events) {
  const { contributors, byStep, last } = checkEveryStep(events, 'outer', 'outer');
  return { slots: contributors.map((ids) => ids.map(slotOf)), byStep, last };
}

/** The checks both failure modes share; returns the parsed run. */
function checkRecovered(res, { victim, lostLine, joinedId }) {
  assertSucceeded(res, 'the elastic run');
  const { events, text } = parse(res);
  const { slots, byStep, last } = checkOuterSteps(events);
  const done = events.filter((e) => e.event === 'done');
  assert.deepEqual(done.map((e) => e.id).sort(), ['0.0', '1.0', '2.0', '3.0'].map((id) => (id.startsWith(`${victim}.`) ? joinedId : id)).sort(), 'the workers that finished');
  assert.equal(new Set(done.map((e) => e.hash)).size, 1, 'the final θ_global is the same on every worker');
  assert.ok(done.every((e) => e.outer === last), 'every worker ends at the last outer step');
  // The step that lost the victim was averaged over the three others.
  const three = slots.findIndex((s) => s.length === 3);
  assert.ok(three >= 0, `no outer step was averaged over 3 workers: ${JSON.stringify(slots)}`);
  assert.ok(!slots[three].includes(victim), `the step after the failure still counts worker ${victim}`);
  assert.ok(byStep.get(three + 1).every((l) => l.size === 3 && l.generation === 2), 'the redone step ran in generation 2, over 3 workers');
  // The joiner holds the same θ_global as the others after it rejoined.
  const rejoined = events.filter((e) => e.event === 'outer' && e.id === joinedId);
  assert.ok(rejoined.length >= 2, `worker ${joinedId} took part in ${rejoined.length} outer steps after rejoining`);
  assert.ok(slots[slots.length - 1].includes(victim), 'the last outer step averaged the rejoined worker too');
  assert.ok(text.some((l) => l.startsWith('generation 2: workers ') && l.includes(lostLine)), `rank 0's generation line: ${text.filter((l) => l.startsWith('generation')).join(' | ')}`);
  assert.ok(text.some((l) => /^generation [0-9]+: workers [0-3,]+ \(joined /.test(l) && l.includes(`joined ${victim}`)), 'the rejoin is logged');
  // Independent of the library: DiLoCo in float64 over the same contributors.
  const want = replay(slots);
  const got = done[0].global;
  const d = maxDiff(got, want);
  assert.ok(d < 1e-4, `θ_global is ${d} from the float64 replay`);
  return { events, text, slots };
}

describe('99 elastic training', function () {
  this.timeout(90000);

  it('SIGKILL in mid outer step: 3 finish it over their quorum, θ_global bit-identical after every outer step, the restarted worker rejoins', async function () {
    const res = await elastic('kill');
    const { text } = checkRecovered(res, { victim: 2, lostLine: 'workers 0,1,3 (lost 2 after ', joinedId: '2.1' });
    assert.ok(text.some((l) => /rank 2 \(pid [0-9]+\) was killed by SIGKILL \(exit status 137\); restarting it/.test(l)), 'the launcher restarts only rank 2');
  });

  it('SIGSTOP: dropped after the deadline; when resumed it rejoins as a new member and receives the state', async function () {
    const res = await elastic('stop');
    checkRecovered(res, { victim: 3, lostLine: 'workers 0,1,2 (lost 3 after worker 3.0 stopped responding', joinedId: '3.0' });
  });

  it('fewer live workers than --min-workers: every survivor stops with QUORUM_LOST, the launcher with the lost rank\'s code', async function () {
    const res = await elastic('kill', { launcherArgs: ['--max-restarts', '0', '--min-workers', '4'] });
    assert.equal(res.code, 137, `the launcher exits with the killed rank's status\n${res.stderr}`);
    const errors = parse(res).events.filter((e) => e.event === 'error');
    assert.deepEqual(errors.map((e) => e.id).sort(), ['0.0', '1.0', '3.0']);
    for (const e of errors) {
      assert.equal(e.code, 'QUORUM_LOST');
      assert.match(e.message, /3 live workers \(0\.0, 1\.0, 3\.0\), fewer than minWorkers 4/);
    }
  });

  it('when every worker that held the state dies, the restarted ones stop with QUORUM_LOST instead of waiting', async function () {
    const res = await elastic('wipe', { nproc: 2, launcherArgs: ['--max-restarts', '2'] });
    assert.equal(res.code, 1, `the launcher exits with the first failure it did not restart\n${res.stderr}`);
    const errors = parse(res).events.filter((e) => e.event === 'error');
    assert.deepEqual(errors.map((e) => e.id).sort(), ['0.1', '1.1']);
    for (const e of errors) {
      assert.equal(e.code, 'QUORUM_LOST');
      assert.match(e.message, /every worker that held the training state is gone \(generation 1: 0\.0, 1\.0\)/);
    }
  });

  it('a stranger without the job\'s token cannot join a generation', async function () {
    const res = await elastic('stranger', { nproc: 2, steps: 20 });
    assertSucceeded(res, 'the run with a stranger');
    const { events } = parse(res);
    const s = events.find((e) => e.event === 'stranger');
    assert.ok(s, 'the stranger reported');
    assert.equal(s.code, 'STORE_REFUSED');
    assert.match(s.message, /refused this client/);
    assert.deepEqual(s.members, ['0.0', '1.0']);
    const done = events.filter((e) => e.event === 'done');
    assert.equal(done.length, 2);
    assert.ok(done.every((e) => e.generation === 1), 'the stranger started no generation');
    // The modes elastic DiLoCo cannot redo are refused by name, on a real Elastic.
    const refused = events.filter((e) => e.event === 'refused' && e.id === '0.0');
    assert.deepEqual(refused.map((e) => [e.code, /^options\.(mode|fragments|fragmentSyncDelay): expected/.test(e.message)]), [
      ['INVALID_ARGUMENT', true],
      ['INVALID_ARGUMENT', true],
      ['INVALID_ARGUMENT', true],
    ]);
  });

  it('Elastic.join without a store that outlives the workers is ELASTIC_UNAVAILABLE', async function () {
    const saved = process.env.COLLECTIVES_STORE_HOSTED;
    delete process.env.COLLECTIVES_STORE_HOSTED;
    try {
      await assert.rejects(Elastic.join(), (e) => e.code === 'ELASTIC_UNAVAILABLE' && /collectives-run --elastic/.test(e.message));
    } finally {
      if (saved !== undefined) process.env.COLLECTIVES_STORE_HOSTED = saved;
    }
  });

  it('bad options are refused naming the option', async function () {
    await assert.rejects(Elastic.join({ deadlineMs: 'soon' }), (e) => e.code === 'INVALID_ARGUMENT' && /options\.deadlineMs/.test(e.message));
    await assert.rejects(Elastic.join({ heartbeatMs: 100, deadlineMs: 150 }), (e) => e.code === 'INVALID_ARGUMENT' && /options\.deadlineMs: expected an integer from 200/.test(e.message));
    await assert.rejects(Elastic.join({ quorum: 2 }), (e) => e.code === 'INVALID_ARGUMENT' && /options\.quorum/.test(e.message));
    const set = new ParameterSet([{ name: 'w', shape: [4] }]);
    await assert.rejects(ElasticDiLoCo.create({}, set, {}), (e) => e.code === 'INVALID_ARGUMENT' && /^elastic: expected an Elastic/.test(e.message));
  });
});
