'use strict';
// Elastic data parallelism: real workers started by `collectives-run --elastic`, one of which
// SIGKILLs itself while a step's all-reduce is in flight. The survivors drop that step, retry
// it over the three of them, and the restarted worker rejoins with the parameters and the
// optimizer state. The parameters' hashes are compared after every step, and the final
// parameters against a float64 replay of SGD computed here from whose gradients each step
// averaged (test/helpers/elastic-ddp-problem.js).

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { replay } = require('./helpers/elastic-ddp-problem');
const { parse, checkEveryStep, maxDiff, slotOf } = require('./helpers/elastic-runs');
const { ElasticDataParallel, ParameterSet, SGD } = require('../dist/training');

const VICTIM = 2;
const FAIL_AT = 10;

function run(mode, { nproc = 4, steps = 30, momentum = 0 } = {}) {
  return launchWorker('elastic-ddp.js', { nproc, args: [mode, String(steps), String(momentum)], launcherArgs: ['--elastic', '--max-restarts', '1'], killAfterMs: 60000 });
}

/**
 * Every step from 1 to the last: printed by someone, one hash and one list of contributors on
 * every worker that printed it, and the optimizer's step count equal to the step's. Returns the
 * contributors' ids per step.
 */
function checkSteps(events) {
  return checkEveryStep(events, 'step', 'step', (lines, k) => {
    assert.ok(lines.every((l) => l.opt === k), `step ${k}: the optimizer's step count: ${lines.map((l) => `${l.id} ${l.opt}`).join(', ')}`);
    // Everyone who averaged the step printed it (the victim excepted: it died in it).
    assert.deepEqual(lines.map((l) => l.id).sort(), [...lines[0].contributors].sort(), `step ${k}: printed by ${lines.map((l) => l.id)} but averaged ${lines[0].contributors}`);
  });
}

function checkKilled(res, { momentum }) {
  assertSucceeded(res, 'the elastic run');
  const { events, text } = parse(res);
  const { contributors, byStep, last } = checkSteps(events);
  const survivors = ['0.0', '1.0', '3.0'];
  // Before the failure: the four of them.
  for (let k = 1; k < FAIL_AT; k++) assert.deepEqual(contributors[k - 1], ['0.0', '1.0', '2.0', '3.0'], `step ${k}`);
  // The step in flight was dropped by every survivor and retried over exactly the three of them, in generation 2.
  const dropped = events.filter((e) => e.event === 'dropped');
  assert.deepEqual(dropped.map((e) => [e.id, e.step, e.generation, e.now]).sort(), survivors.map((id) => [id, FAIL_AT, 1, 2]), 'the dropped steps');
  assert.deepEqual(contributors[FAIL_AT - 1], survivors, `step ${FAIL_AT} was retried over the survivors`);
  assert.ok(byStep.get(FAIL_AT).every((l) => l.generation === 2), `step ${FAIL_AT} ran in generation 2`);
  assert.ok(!events.some((e) => e.event === 'step' && e.id === '2.0' && e.step >= FAIL_AT), 'the victim applied no step from the one it died in');
  // The restarted worker joined at a step boundary, with the step count and the parameters of the others.
  const state = events.find((e) => e.event === 'state' && e.id === '2.1');
  assert.ok(state, 'the restarted worker reported its state');
  assert.ok(state.steps >= FAIL_AT && state.opt === state.steps, `the restarted worker starts at step ${state.steps} with an optimizer at ${state.opt}`);
  const before = byStep.get(state.steps);
  assert.equal(state.hash, before[0].hash, `the restarted worker received the parameters of step ${state.steps}`);
  const rejoined = events.filter((e) => e.event === 'step' && e.id === '2.1');
  assert.ok(rejoined.length >= 3, `worker 2.1 took part in ${rejoined.length} steps after rejoining`);
  assert.equal(rejoined[0].step, state.steps + 1, 'its first step is the one after it joined');
  assert.deepEqual(contributors[last - 1], ['0.0', '1.0', '3.0', '2.1'], 'the last step averaged the rejoined worker too, after the survivors');
  // The same end everywhere.
  const done = events.filter((e) => e.event === 'done');
  assert.deepEqual(done.map((e) => e.id).sort(), ['0.0', '1.0', '2.1', '3.0']);
  assert.ok(done.every((e) => e.steps === last && e.hash === byStep.get(last)[0].hash), 'every worker ends at the last step, with its parameters');
  // The launcher restarted only rank 2, and rank 0 logged both generation changes.
  assert.ok(text.some((l) => /rank 2 \(pid [0-9]+\) was killed by SIGKILL \(exit status 137\); restarting it/.test(l)), 'the launcher restarts only rank 2');
  assert.ok(text.some((l) => l.startsWith('generation 2: workers 0,1,3 (lost 2 after ')), `rank 0's generation lines: ${text.filter((l) => l.startsWith('generation')).join(' | ')}`);
  assert.ok(text.some((l) => /^generation [0-9]+: workers 0,1,3,2 \(joined 2\)/.test(l)), 'the rejoin is logged');
  // Independent of the library: SGD in float64 over the same contributors.
  const want = replay(contributors.map((ids) => ids.map(slotOf)), { momentum });
  const d = maxDiff(done[0].params, want);
  assert.ok(d < 1e-4, `the parameters are ${d} from the float64 replay`);
}

describe('99 elastic data parallelism', function () {
  this.timeout(90000);

  it('SIGKILL in mid step: the survivors drop it and retry it over the three of them, the restarted worker rejoins with the state; parameters bit-identical after every step and equal to a float64 replay', async function () {
    checkKilled(await run('kill'), { momentum: 0 });
  });

  it('with momentum: the restarted worker receives the momentum buffer', async function () {
    checkKilled(await run('kill', { momentum: 0.9 }), { momentum: 0.9 });
  });

  it('options are checked before anything is sent, and broadcastParameters decides whose parameters the workers start from', async function () {
    const res = await run('options', { nproc: 2, steps: 5 });
    assertSucceeded(res, 'the run with bad options');
    const { events } = parse(res);
    for (const id of ['0.0', '1.0']) {
      const refused = events.filter((e) => e.event === 'refused' && e.id === id);
      assert.deepEqual(refused.map((e) => e.code), ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'], JSON.stringify(refused));
      assert.match(refused[0].message, /^options\.bucketCapMB: expected one of the options optimizer, broadcastParameters/);
      assert.match(refused[1].message, /^options\.optimizer: expected a function/);
      assert.match(refused[2].message, /^options\.broadcastParameters: expected a boolean/);
      assert.match(refused[3].message, /^options\.optimizer\(params\): expected an Optimizer/);
    }
    const hash = (event, id) => events.find((e) => e.event === event && e.id === id).hash;
    assert.notEqual(hash('kept', '0.0'), hash('kept', '1.0'), 'broadcastParameters: false keeps each worker\'s own parameters');
    assert.equal(hash('broadcast', '1.0'), hash('kept', '0.0'), 'by default every worker starts from rank 0\'s');
    const done = events.filter((e) => e.event === 'done');
    assert.equal(done.length, 2);
    assert.ok(done.every((e) => e.steps === 5 && e.generation === 1 && e.hash === done[0].hash), JSON.stringify(done.map(({ params, ...e }) => e)));
  });

  it('create() refuses what is not an Elastic, naming the argument', async function () {
    const set = new ParameterSet([{ name: 'w', shape: [4] }]);
    const optimizer = (p) => new SGD(p, { lr: 0.1 });
    await assert.rejects(ElasticDataParallel.create({}, set, { optimizer }), (e) => e.code === 'INVALID_ARGUMENT' && /^elastic: expected an Elastic/.test(e.message));
    await assert.rejects(ElasticDataParallel.create(null, set, { optimizer }), (e) => e.code === 'INVALID_ARGUMENT' && /^elastic: /.test(e.message));
  });
});
