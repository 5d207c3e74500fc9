// Distributed training of Fashion-MNIST: an MLP (784-256-10, ReLU, softmax cross-entropy)
// computed by TF.js, its weights in one flat collectives ParameterSet, AdamW (lr 1e-3, weight
// decay 0.01). Each rank takes its own share of every epoch (DistributedSampler) with 32 images a
// step. How the ranks' gradients become new weights is the --strategy (examples/strategies/):
// ddp averages the gradients every step (torch DDP's buckets); zero1, zero2, zero3 and zero++
// shard the optimizer state, gradients and weights (DeepSpeed's ZeRO stages and ZeRO++); diloco
// averages pseudo-gradients once every --sync-every steps (DiLoCo and its streaming, eager and
// delayed forms).
//
//   apt-get install dataset-fashion-mnist            # or pass --data DIR
//   npx collectives-run --nproc-per-node 4 examples/train-fashion-mnist.js --steps 1500
//
// Flags: --strategy ddp|zero1|zero2|zero3|zero++|diloco, --steps N, --batch-size N (per rank), --backend wasm|cpu, --seed N,
// --save DIR (a checkpoint at the end, and every --save-every N steps), --resume DIR,
// --json FILE, --data DIR, --log-every N; and each strategy's own (its file in
// examples/strategies/ lists them; ddp: --compress none|fp16|bf16|int8|int4|fp8).
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { init } = require('collectives');
const { DistributedSampler, batches, loadFashionMnist } = require('collectives/training');
const { tfjsParameters } = require('collectives/tfjs');
const { BACKENDS, useBackend, buildModel, trainStep, accuracy } = require('./fashion-mnist-model');

const { STRATEGY_MODULES } = require('./strategies');

const STRATEGIES = STRATEGY_MODULES.flatMap((m) => m.names);

function options() {
  const own = Object.assign({}, ...STRATEGY_MODULES.map((m) => m.flags));
  const { values, tokens } = parseArgs({
    tokens: true,
    options: {
      ...own,
      strategy: { type: 'string', default: 'ddp' },
      steps: { type: 'string', default: '1500' },
      'batch-size': { type: 'string', default: '32' },
      backend: { type: 'string', default: 'wasm' },
      seed: { type: 'string', default: '0' },
      save: { type: 'string' },
      'save-every': { type: 'string' },
      resume: { type: 'string' },
      json: { type: 'string' },
      data: { type: 'string' },
      'log-every': { type: 'string', default: '100' },
    },
  });
  const int = (flag, min) => {
    const v = Number(values[flag]);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${flag}: expected an integer ≥ ${min}, got ${JSON.stringify(values[flag])}`);
    return v;
  };
  const oneOf = (flag, allowed) => {
    if (!allowed.includes(values[flag])) throw new Error(`--${flag}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(values[flag])}`);
    return values[flag];
  };
  if (values['save-every'] !== undefined && values.save === undefined) throw new Error('--save-every: needs --save DIR');
  const strategy = oneOf('strategy', STRATEGIES);
  const module = STRATEGY_MODULES.find((m) => m.names.includes(strategy));
  // parseArgs fills in defaults, so a flag given by hand is told apart by its tokens.
  const given = new Set(tokens.filter((t) => t.kind === 'option').map((t) => t.name));
  const flags = {};
  for (const name of Object.keys(own)) {
    if (name in module.flags) flags[name] = values[name];
    else if (given.has(name)) throw new Error(`--${name}: not a flag of --strategy ${strategy} (its flags: ${Object.keys(module.flags).map((f) => '--' + f).join(', ') || 'none'})`);
  }
  if (module.check) module.check(flags);
  return {
    strategy,
    module,
    flags,
    steps: int('steps', 1),
    batchSize: int('batch-size', 1),
    backend: oneOf('backend', BACKENDS),
    seed: int('seed', 0),
    save: values.save,
    saveEvery: values['save-every'] === undefined ? undefined : int('save-every', 1),
    resume: values.resume,
    json: values.json,
    data: values.data,
    logEvery: int('log-every', 1),
    // Every strategy's (inner) optimizer: AdamW with these settings.
    adamw: { lr: 1e-3, weightDecay: 0.01 },
  };
}

/** This rank's batches, epoch after epoch, from step `from` on (so a resumed run sees the same data). */
function* batchStream(sampler, batchSize, from) {
  const perEpoch = Math.floor(sampler.numSamples / batchSize);
  let step = from;
  for (let epoch = Math.floor(from / perEpoch); ; epoch++) {
    sampler.setEpoch(epoch);
    const all = batches(sampler.indices(), batchSize, { dropLast: true });
    for (let i = step - epoch * perEpoch; i < all.length; i++, step++) yield all[i];
  }
}

async function main() {
  const o = options();
  await useBackend(o.backend);

  const comm = await init();
  const train = loadFashionMnist({ dir: o.data, split: 'train' });
  const test = comm.rank === 0 ? loadFashionMnist({ dir: o.data, split: 'test' }) : undefined;

  const model = buildModel(o.seed);
  const binding = tfjsParameters(model);
  const { params } = binding;
  const strategy = await o.module.create({ comm, params, binding, flags: o.flags, o });
  let first = 0;
  if (o.resume !== undefined) {
    const loaded = await strategy.load(o.resume);
    first = loaded.step;
    if (comm.rank === 0) console.log(`resumed from ${loaded.dir} at step ${first}`);
  }
  binding.push();

  const sampler = new DistributedSampler(train.count, { numReplicas: comm.size, rank: comm.rank, seed: o.seed });
  const stream = batchStream(sampler, o.batchSize, first);
  if (comm.rank === 0) {
    console.log(`${o.strategy} on ${comm.size} ranks (${comm.engine} engine), ${strategy.describe}, ${o.backend} backend, batch ${o.batchSize} per rank`);
  }
  comm.resetStats();
  const started = performance.now();
  let windowStart = started;
  let windowLoss = 0;
  let windowSteps = 0;
  let trainLoss = NaN;
  let saved;
  for (let step = first + 1; step <= o.steps; step++) {
    if (strategy.beforeForward) await strategy.beforeForward(step);
    const loss = trainStep(binding, model, train, stream.next().value);
    await strategy.afterBackward(step);
    windowLoss += loss;
    windowSteps++;
    if (step % o.logEvery === 0 || step === o.steps) {
      const now = performance.now();
      trainLoss = windowLoss / windowSteps;
      const samplesPerSecond = (windowSteps * o.batchSize * comm.size) / ((now - windowStart) / 1000);
      if (comm.rank === 0) console.log(`step ${step}: loss ${trainLoss.toFixed(4)}, ${samplesPerSecond.toFixed(0)} samples/s`);
      windowStart = now;
      windowLoss = 0;
      windowSteps = 0;
    }
    if (o.save !== undefined && (step === o.steps || (o.saveEvery !== undefined && step % o.saveEvery === 0))) {
      saved = await strategy.save(o.save, step);
    }
  }
  const wallSeconds = (performance.now() - started) / 1000;
  // Every rank waits for the checkpoint to be complete before anyone may read it.
  await comm.barrier();
  const stats = comm.stats();
  if (comm.rank === 0) {
    const testAccuracy = accuracy(model, test);
    const result = {
      strategy: o.strategy,
      ...(strategy.result ? strategy.result() : {}),
      worldSize: comm.size,
      steps: o.steps,
      testAccuracy,
      trainLoss,
      syncRounds: strategy.syncRounds(),
      bytesSent: stats.total.bytesSent,
      wallSeconds,
    };
    console.log(`test accuracy ${(testAccuracy * 100).toFixed(2)}% after ${o.steps} steps (${wallSeconds.toFixed(1)} s)`);
    if (saved !== undefined) console.log(`checkpoint: ${saved}`);
    if (o.json !== undefined) fs.writeFileSync(o.json, JSON.stringify(result, null, 2) + '\n');
  }
  await strategy.free();
  await comm.destroy();
}

main().catch((err) => {
  console.error(err && err.message ? err.message : err);
  process.exit(1);
});
