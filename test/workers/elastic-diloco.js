'use strict';
// One worker of test/99.elastic.test.js, started by `collectives-run --elastic`: elastic DiLoCo
// on a least-squares problem whose optimum is known (the mean of the workers' targets). One
// worker dies (SIGKILL) or stops (SIGSTOP, then SIGCONT) while the outer all-reduce is in
// flight; the others go on. Every worker prints one JSON line per outer step (its generation,
// the outer step count, the hash of θ_global and whose inner phases the step averaged), so the
// test can compare the hashes of every live worker after every outer step, and replay the run
// in float64 from the contributors alone; the last line holds θ_global.
//
//   elastic-diloco.js kill|stop|wipe|stranger|plain [steps]
// (wipe: every worker dies at once, so nobody is left who holds the state.)

const { spawn } = require('node:child_process');
const { ParameterSet, SGD, Elastic, ElasticDiLoCo } = require('../../dist/training');
const { SPECS, N, H, INNER_LR, OUTER, a, target, start } = require('../helpers/elastic-problem');

const [mode = 'plain', stepsArg = '60'] = process.argv.slice(2);
const STEPS = Number(stepsArg);
const SLOTS = Number(process.env.WORLD_SIZE);
const slot = Number(process.env.RANK);
const incarnation = Number(process.env.COLLECTIVES_RESTART_COUNT ?? '0');
// The victim, and the outer step in whose all-reduce it goes.
const VICTIM = mode === 'stop' ? 3 : 2;
const FAIL_AT = 4 * H;

const line = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A process that knows the store's address but not the job's token tries to join. */
function stranger(elastic) {
  const code = `require(${JSON.stringify(require.resolve('../../dist/training'))}).Elastic.join({ timeoutMs: 3000 })
    .then(() => console.log(JSON.stringify({ joined: true })), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))`;
  const child = spawn(process.execPath, ['-e', code], {
    env: { ...process.env, COLLECTIVES_TOKEN: 'not-the-token', COLLECTIVES_ELASTIC_ID: 'stranger.0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('close', () => {
    line({ event: 'stranger', ...JSON.parse(out.trim() || '{}'), members: elastic.record.members });
    resolve();
  }));
}

async function main() {
  const elastic = await Elastic.join({ heartbeatMs: 50, deadlineMs: 1000, timeoutMs: 20000 });
  line({ event: 'joined', id: elastic.id, generation: elastic.generation, rank: elastic.comm.rank, size: elastic.comm.size, pid: process.pid });
  if (mode === 'stranger' && slot === 0 && incarnation === 0) await stranger(elastic);
  const set = new ParameterSet(SPECS);
  set.data.set(start());
  const inner = new SGD(set, { lr: INNER_LR });
  if (mode === 'stranger') {
    for (const bad of [{ mode: 'eager' }, { fragments: 2 }, { fragmentSyncDelay: 1 }]) {
      await ElasticDiLoCo.create(elastic, set, { syncEvery: H, ...bad }).then(
        () => line({ event: 'refused', id: elastic.id, bad, code: null }),
        (e) => line({ event: 'refused', id: elastic.id, bad, code: e.code, message: e.message }),
      );
    }
  }
  const ed = await ElasticDiLoCo.create(elastic, set, { innerOptimizer: inner, syncEvery: H, outer: OUTER });
  line({ event: 'state', id: elastic.id, generation: elastic.generation, innerSteps: ed.innerSteps, outer: ed.outerSteps, hash: ed.globalHash() });
  const c = target(slot);
  // Stop together: the condition reads only what every member shares (the step count and the
  // generation's size), at outer-step boundaries. Go on past STEPS until the victim is back.
  let fullAfterFailure = 0;
  while (ed.innerSteps < STEPS || ((mode === 'kill' || mode === 'stop') && fullAfterFailure < 2 && ed.innerSteps < 10 * STEPS)) {
    for (let k = 0; k < N; k++) set.grad[k] = a[k] * (set.data[k] - c[k]);
    inner.step();
    const outerStep = (ed.innerSteps + 1) % H === 0;
    const victim = mode === 'wipe' || slot === VICTIM;
    if (outerStep && ed.innerSteps + 1 === FAIL_AT && victim && incarnation === 0 && elastic.generation === 1) {
      // Set off once the all-reduce has been issued: step() issues it before its first await.
      if (mode === 'kill' || mode === 'wipe') setImmediate(() => process.kill(process.pid, 'SIGKILL'));
      else if (mode === 'stop') spawn('sh', ['-c', `sleep 0.05; kill -STOP ${process.pid}; sleep 3; kill -CONT ${process.pid}`], { stdio: 'ignore', detached: true }).unref();
    }
    await ed.step();
    if (ed.innerSteps % H === 0) {
      line({ event: 'outer', id: elastic.id, generation: elastic.generation, size: ed.comm.size, outer: ed.outerSteps, innerSteps: ed.innerSteps, hash: ed.globalHash(), contributors: ed.lastContributors });
      if (elastic.generation > 1 && ed.comm.size === SLOTS) fullAfterFailure++;
    }
    await sleep(8);
  }
  line({ event: 'done', id: elastic.id, generation: elastic.generation, outer: ed.outerSteps, innerSteps: ed.innerSteps, hash: ed.globalHash(), global: Array.from(ed.globalParams), recoveries: elastic.recoveries });
  await ed.free();
  await elastic.close();
}

main().catch((err) => {
  line({ event: 'error', id: process.env.COLLECTIVES_ELASTIC_ID, code: err.code, message: err.message });
  console.error(err);
  process.exit(1);
});
