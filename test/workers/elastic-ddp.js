'use strict';
// One worker of test/99.elastic-ddp.test.js, started by `collectives-run --elastic`: elastic
// data parallelism (SGD) on a least-squares problem where each launcher slot has its own target.
// In 'kill' mode slot 2 SIGKILLs itself while the all-reduce of step FAIL_AT is in flight; the
// others drop that step, retry it over the survivors and go on, and the restarted worker joins
// at a step boundary. Every worker prints one JSON line per applied step (the parameters' hash
// and whose gradients the step averaged) and one per dropped step, so the test can compare the
// hashes after every step and replay the run in float64; the last line holds the parameters.
//
//   elastic-ddp.js kill|options [steps] [momentum]

const { ParameterSet, SGD, Elastic, ElasticDataParallel } = require('../../dist/training');
const { SPECS, N, LR, a, target, start } = require('../helpers/elastic-ddp-problem');

const [mode = 'kill', stepsArg = '30', momentumArg = '0'] = process.argv.slice(2);
const STEPS = Number(stepsArg);
const MOMENTUM = Number(momentumArg);
const SLOTS = Number(process.env.WORLD_SIZE);
const slot = Number(process.env.RANK);
const incarnation = Number(process.env.COLLECTIVES_RESTART_COUNT ?? '0');
const VICTIM = 2;
const FAIL_AT = 10;
/** Steps after which the run stops even if the restarted worker never came back. */
const CAP = 60 * STEPS;

const line = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sgd = (params) => new SGD(params, MOMENTUM === 0 ? { lr: LR } : { lr: LR, momentum: MOMENTUM });

/** The refusals the test checks, and broadcastParameters: false and true on a real Elastic. */
async function options(elastic, set) {
  for (const bad of [{ optimizer: sgd, bucketCapMB: 25 }, { optimizer: 'SGD' }, { optimizer: sgd, broadcastParameters: 'yes' }, { optimizer: () => ({}) }]) {
    await ElasticDataParallel.create(elastic, set, bad).then(
      () => line({ event: 'refused', id: elastic.id, code: null }),
      (e) => line({ event: 'refused', id: elastic.id, code: e.code, message: e.message }),
    );
  }
  set.data.set(start(slot));
  const own = await ElasticDataParallel.create(elastic, set, { optimizer: sgd, broadcastParameters: false });
  line({ event: 'kept', id: elastic.id, hash: own.paramsHash() });
  await own.free();
  const shared = await ElasticDataParallel.create(elastic, set, { optimizer: sgd });
  line({ event: 'broadcast', id: elastic.id, hash: shared.paramsHash() });
  await shared.free();
  set.data.set(start());
}

async function main() {
  const elastic = await Elastic.join({ heartbeatMs: 50, deadlineMs: 1000, timeoutMs: 20000 });
  line({ event: 'joined', id: elastic.id, generation: elastic.generation, rank: elastic.comm.rank, size: elastic.comm.size, pid: process.pid });
  const set = new ParameterSet(SPECS);
  set.data.set(start());
  if (mode === 'options') await options(elastic, set);
  const edp = await ElasticDataParallel.create(elastic, set, { optimizer: sgd });
  line({ event: 'state', id: elastic.id, generation: elastic.generation, steps: edp.steps, opt: edp.optimizer.stepCount, hash: edp.paramsHash() });
  const c = target(slot);
  // Stop together: the condition reads only what every member of a generation shares at a step
  // boundary (the step count, the generation, its size and the step count it began at). In
  // 'kill' mode go on past STEPS until the restarted worker has been back for a few steps.
  let seen = -1;
  let begunAt = 0;
  for (;;) {
    if (elastic.generation !== seen) {
      seen = elastic.generation;
      begunAt = edp.steps;
    }
    const whole = elastic.generation > 1 && edp.comm.size === SLOTS && edp.steps - begunAt >= 3;
    if ((edp.steps >= STEPS && (mode !== 'kill' || whole)) || edp.steps >= CAP) break;
    for (let k = 0; k < N; k++) set.grad[k] = a[k] * (set.data[k] - c[k]);
    const next = edp.steps + 1;
    const generation = elastic.generation;
    // The others come late to the victim's step, so that its all-reduce is waiting on them (in
    // flight) when it dies, rather than already complete.
    if (mode === 'kill' && next === FAIL_AT && slot !== VICTIM && generation === 1) await sleep(100);
    const applied = edp.step();
    // Set off once the all-reduce has been issued: step() issues it before its first await.
    if (mode === 'kill' && next === FAIL_AT && slot === VICTIM && incarnation === 0) setImmediate(() => process.kill(process.pid, 'SIGKILL'));
    if (await applied) {
      line({ event: 'step', id: elastic.id, step: edp.steps, opt: edp.optimizer.stepCount, generation, hash: edp.paramsHash(), contributors: edp.lastContributors });
    } else {
      line({ event: 'dropped', id: elastic.id, step: next, generation, now: elastic.generation, steps: edp.steps, members: elastic.record.members });
    }
    await sleep(4);
  }
  line({ event: 'done', id: elastic.id, generation: elastic.generation, steps: edp.steps, hash: edp.paramsHash(), params: Array.from(set.data), recoveries: elastic.recoveries });
  await edp.free();
  await elastic.close();
}

main().catch((err) => {
  line({ event: 'error', id: process.env.COLLECTIVES_ELASTIC_ID, code: err.code, message: err.message });
  console.error(err);
  process.exit(1);
});
