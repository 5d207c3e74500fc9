// Fashion-MNIST with DiLoCo that survives workers that die: the MLP of the training quick start
// (examples/fashion-mnist-model.js), AdamW inner steps (lr 1e-3, weight decay 0.01), an outer
// Nesterov step (0.7 / 0.9) every --sync-every steps over the workers alive at that moment. A
// worker that dies is dropped and the outer step redone without it; collectives-run restarts it
// and it rejoins at the next outer step with θ_global from a live worker.
//
//   npx collectives-run --elastic --max-restarts 3 --nproc-per-node 4 examples/train-elastic.js --steps 1500
//
// Flags: --steps N (the job's inner steps, a multiple of --sync-every), --sync-every H (50),
// --batch-size N (32 per worker), --backend wasm|cpu, --seed N, --json FILE, --data DIR,
// --log-every N (inner steps, a multiple of H). Every worker draws its batches from its own
// shuffle of the training set (seeded by its launcher rank and restart count), since the set
// of workers changes. Each worker prints a `recovered: {...}` line after each failure it met, with
// the time in ms from the failed call to its next successful collective, and a `finished: {...}`
// line at the end with the hash of its θ_global.
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { AdamW, DistributedSampler, Elastic, ElasticDiLoCo, batches, loadFashionMnist } = require('collectives/training');
const { tfjsParameters } = require('collectives/tfjs');
const { BACKENDS, useBackend, buildModel, trainStep, accuracy } = require('./fashion-mnist-model');

function options() {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '1500' },
      'sync-every': { type: 'string', default: '50' },
      'batch-size': { type: 'string', default: '32' },
      backend: { type: 'string', default: 'wasm' },
      seed: { type: 'string', default: '0' },
      json: { type: 'string' },
      data: { type: 'string' },
      'log-every': { type: 'string' },
    },
  });
  const int = (flag, min) => {
    const v = Number(values[flag]);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${flag}: expected an integer ≥ ${min}, got ${JSON.stringify(values[flag])}`);
    return v;
  };
  const syncEvery = int('sync-every', 1);
  const steps = int('steps', syncEvery);
  if (steps % syncEvery !== 0) throw new Error(`--steps: expected a multiple of --sync-every (${syncEvery}), got ${steps}`);
  if (!BACKENDS.includes(values.backend)) throw new Error(`--backend: expected one of ${BACKENDS.join(', ')}, got ${JSON.stringify(values.backend)}`);
  const logEvery = values['log-every'] === undefined ? 5 * syncEvery : int('log-every', 1);
  if (logEvery % syncEvery !== 0) throw new Error(`--log-every: expected a multiple of --sync-every (${syncEvery}), got ${logEvery}`);
  return { steps, syncEvery, batchSize: int('batch-size', 1), backend: values.backend, seed: int('seed', 0), json: values.json, data: values.data, logEvery };
}

/** Batches from this worker's own shuffles of the training set, epoch after epoch. */
function* batchStream(count, batchSize, seed) {
  const sampler = new DistributedSampler(count, { numReplicas: 1, rank: 0, seed });
  for (let epoch = 0; ; epoch++) {
    sampler.setEpoch(epoch);
    yield* batches(sampler.indices(), batchSize, { dropLast: true });
  }
}

async function main() {
  const o = options();
  await useBackend(o.backend);
  const train = loadFashionMnist({ dir: o.data, split: 'train' });
  let elastic;
  try {
    elastic = await Elastic.join();
  } catch (err) {
    // Restarted after the others had finished: nothing is left to do.
    if (err.code === 'JOB_FINISHED') return;
    throw err;
  }
  const model = buildModel(o.seed);
  const binding = tfjsParameters(model);
  const { params } = binding;
  const optimizer = new AdamW(params, { lr: 1e-3, weightDecay: 0.01 });
  const diloco = await ElasticDiLoCo.create(elastic, params, { innerOptimizer: optimizer, syncEvery: o.syncEvery, outer: { lr: 0.7, momentum: 0.9, nesterov: true } });
  binding.push();

  const restart = Number(process.env.COLLECTIVES_RESTART_COUNT ?? '0');
  const stream = batchStream(train.count, o.batchSize, o.seed * 1_000_003 + Number(process.env.RANK ?? '0') * 1009 + restart);
  if (elastic.comm.rank === 0 && diloco.innerSteps === 0) {
    console.log(`elastic DiLoCo on ${elastic.comm.size} workers, ${params.size} parameters, H ${o.syncEvery}, ${o.backend} backend, batch ${o.batchSize} per worker`);
  }
  const started = performance.now();
  let windowLoss = 0;
  let windowSteps = 0;
  let trainLoss = NaN;
  while (diloco.innerSteps < o.steps) {
    const loss = trainStep(binding, model, train, stream.next().value);
    optimizer.step();
    const before = elastic.recoveries.length;
    await diloco.step();
    for (const ms of elastic.recoveries.slice(before)) console.log(`recovered: ${JSON.stringify({ id: elastic.id, ms, generation: elastic.generation })}`);
    // The step may have moved the weights (an outer step, or the state of a new generation).
    binding.push();
    windowLoss += loss;
    windowSteps++;
    if (diloco.innerSteps % o.logEvery === 0) {
      trainLoss = windowLoss / windowSteps;
      if (elastic.comm.rank === 0) console.log(`step ${diloco.innerSteps}: loss ${trainLoss.toFixed(4)}, generation ${elastic.generation}, ${elastic.comm.size} workers`);
      windowLoss = 0;
      windowSteps = 0;
    }
  }
  const wallSeconds = (performance.now() - started) / 1000;
  // Every worker's θ_global, which must be the same bits on all.
  console.log(`finished: ${JSON.stringify({ id: elastic.id, generation: elastic.generation, globalHash: diloco.globalHash() })}`);
  if (elastic.comm.rank === 0) {
    // θ_local is θ_global right after the last outer step.
    const testAccuracy = accuracy(model, loadFashionMnist({ dir: o.data, split: 'test' }));
    console.log(`test accuracy ${(testAccuracy * 100).toFixed(2)}% after ${o.steps} steps, ${diloco.outerSteps} outer steps, generation ${elastic.generation} (${wallSeconds.toFixed(1)} s)`);
    const result = { steps: o.steps, syncEvery: o.syncEvery, outerSteps: diloco.outerSteps, generation: elastic.generation, workers: elastic.comm.size, testAccuracy, trainLoss, globalHash: diloco.globalHash(), wallSeconds };
    if (o.json !== undefined) fs.writeFileSync(o.json, JSON.stringify(result, null, 2) + '\n');
  }
  await diloco.free();
  optimizer.free();
  await elastic.close();
}

main().catch((err) => {
  console.error(err && err.message ? err.message : err);
  process.exit(1);
});
