// Time to a test accuracy on a slow link: the Fashion-MNIST example's model, data and
// strategies (examples/strategies/), 4 ranks in a network namespace whose loopback is shaped
// to --rate (bench/shaped-link.js), one run per strategy in turn. Run it as a plain node script:
//
//   node bench/diloco-race.js [--rate 100mbit] [--target 0.85] [--eval-every 50] [--max-steps 1500]
//                             [--runs ddp,diloco,streaming,eager,int8] [--json FILE] [--plot FILE.svg]
//   node bench/diloco-race.js --load a.json,b.json [--plot FILE.svg]     the table and plot of earlier --json results
//
// Each run trains --max-steps inner steps. Every --eval-every steps rank 0 copies its current
// weights (a memcpy, nothing else: no barrier, no wait for communication in flight) with the
// seconds since the start; after the run it evaluates each copy on all 10,000 test images. So
// the clock counts training alone, overlap included, and evaluation costs every strategy
// nothing. A strategy's time to --target is that of its first copy at or above it.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { isBenchRank, launchBench } = require('./shaped-link');

// What each --runs name runs: a strategy of the example and its flags.
const RUNS = {
  ddp: { strategy: 'ddp', flags: {} },
  diloco: { strategy: 'diloco', flags: { 'sync-every': '50' } },
  streaming: { strategy: 'diloco', flags: { 'sync-every': '50', fragments: '4', 'fragment-sync-delay': '5' } },
  // Streaming DiLoCo's mixing: half the local progress of the τ overlapped steps kept.
  'streaming-alpha': { strategy: 'diloco', flags: { 'sync-every': '50', fragments: '4', 'fragment-sync-delay': '5', 'fragment-update-alpha': '0.5' } },
  eager: { strategy: 'diloco', flags: { 'sync-every': '50', mode: 'eager', 'fragment-sync-delay': '5' } },
  // τ long enough for the whole model's all-reduce on the shaped link (about 0.4 s, 11 inner steps).
  eager20: { strategy: 'diloco', flags: { 'sync-every': '50', mode: 'eager', 'fragment-sync-delay': '20' } },
  delayed: { strategy: 'diloco', flags: { 'sync-every': '50', mode: 'delayed' } },
  int8: { strategy: 'diloco', flags: { 'sync-every': '50', quantize: 'int8' } },
};

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      rate: { type: 'string', default: '100mbit' },
      target: { type: 'string', default: '0.85' },
      'eval-every': { type: 'string', default: '50' },
      'max-steps': { type: 'string', default: '1500' },
      runs: { type: 'string', default: 'ddp,diloco,streaming,eager,int8' },
      json: { type: 'string' },
      plot: { type: 'string' },
      load: { type: 'string' },
      // Internal: the one run a rank does, and where it writes its result.
      run: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const runs = values.runs.split(',');
  for (const r of runs) if (!(r in RUNS)) throw new Error(`--runs: ${JSON.stringify(r)} is not one of ${Object.keys(RUNS).join(', ')}`);
  return { ...values, runs, target: Number(values.target), evalEvery: Number(values['eval-every']), maxSteps: Number(values['max-steps']) };
}

async function rankMain(o) {
  const tf = require('@tensorflow/tfjs-core');
  const tfl = require('@tensorflow/tfjs-layers');
  require('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  const { init } = require('..');
  const { DistributedSampler, batches, loadFashionMnist } = require('collectives/training');
  const { tfjsParameters } = require('collectives/tfjs');
  const { STRATEGY_MODULES } = require('../examples/strategies');
  const spec = RUNS[o.run];
  const module = STRATEGY_MODULES.find((m) => m.names.includes(spec.strategy));
  const flags = {};
  for (const [name, def] of Object.entries(module.flags)) flags[name] = spec.flags[name] ?? def.default;

  const comm = await init();
  const train = loadFashionMnist({ split: 'train' });
  const test = comm.rank === 0 ? loadFashionMnist({ split: 'test' }) : undefined;
  const PIXELS = 784;
  // The example's model (examples/train-fashion-mnist.js), seed 0.
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [PIXELS], units: 256, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 0 }) }),
      tfl.layers.dense({ units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
    ],
  });
  const binding = tfjsParameters(model);
  const driver = await module.create({ comm, params: binding.params, binding, flags, o: { steps: o.maxSteps, batchSize: 32, seed: 0, adamw: { lr: 1e-3, weightDecay: 0.01 } } });
  binding.push();
  const sampler = new DistributedSampler(train.count, { numReplicas: comm.size, rank: comm.rank, seed: 0 });
  const perEpoch = Math.floor(sampler.numSamples / 32);
  let epochBatches = [];
  const batchAt = (step) => {
    const epoch = Math.floor((step - 1) / perEpoch);
    if ((step - 1) % perEpoch === 0 || epochBatches.length === 0) {
      sampler.setEpoch(epoch);
      epochBatches = batches(sampler.indices(), 32, { dropLast: true });
    }
    return epochBatches[(step - 1) % perEpoch];
  };
  const accuracy = () => {
    let correct = 0;
    for (let start = 0; start < test.count; start += 1000) {
      const n = Math.min(1000, test.count - start);
      const predicted = tf.tidy(() => tf.argMax(model.predict(tf.tensor2d(test.images.subarray(start * PIXELS, (start + n) * PIXELS), [n, PIXELS])), 1).dataSync());
      for (let i = 0; i < n; i++) if (predicted[i] === test.labels[start + i]) correct++;
    }
    return correct / test.count;
  };

  comm.resetStats();
  // Rank 0 keeps a copy of its weights every --eval-every steps and evaluates them all after
  // the run: nothing pauses the ranks or waits for communication in flight, so each strategy's
  // clock is its training alone, overlap included.
  const snapshots = [{ step: 0, seconds: 0, weights: Float32Array.from(binding.params.data) }];
  const started = performance.now();
  let step = 0;
  while (step < o.maxSteps) {
    step++;
    if (driver.beforeForward) await driver.beforeForward(step);
    const ix = batchAt(step);
    const x = new Float32Array(ix.length * PIXELS);
    const y = new Int32Array(ix.length);
    ix.forEach((k, i) => {
      x.set(train.images.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
      y[i] = train.labels[k];
    });
    const xs = tf.tensor2d(x, [ix.length, PIXELS]);
    const ys = tf.oneHot(tf.tensor1d(y, 'int32'), 10);
    binding.backward(() => tf.losses.softmaxCrossEntropy(ys, model.predict(xs)));
    tf.dispose([xs, ys]);
    await driver.afterBackward(step);
    if (comm.rank === 0 && (step % o.evalEvery === 0 || step === o.maxSteps)) {
      snapshots.push({ step, seconds: (performance.now() - started) / 1000, weights: Float32Array.from(binding.params.data) });
    }
  }
  const clock = (performance.now() - started) / 1000;
  if (driver.diloco) await driver.diloco.settle();
  await comm.barrier();
  const curve = [];
  let reached = null;
  if (comm.rank === 0) {
    for (const snap of snapshots) {
      binding.params.data.set(snap.weights);
      binding.push();
      const acc = accuracy();
      curve.push({ step: snap.step, seconds: snap.seconds, accuracy: acc });
      console.log(`${o.run}: step ${snap.step}, ${snap.seconds.toFixed(1)} s, test accuracy ${(acc * 100).toFixed(2)}%`);
      if (reached === null && acc >= o.target) reached = { step: snap.step, seconds: snap.seconds, accuracy: acc };
    }
  }
  const stats = comm.stats();
  if (comm.rank === 0) {
    const result = { run: o.run, strategy: spec.strategy, flags: spec.flags, rate: o.rate, target: o.target, reached, steps: step, seconds: clock, secondsPerStep: clock / step, syncRounds: driver.syncRounds(), bytesSent: stats.total.bytesSent, curve };
    fs.writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
  }
  await driver.free();
  await comm.destroy();
}

function plotSpec(results, o) {
  const values = results.flatMap((r) => r.curve.filter((p) => p.step > 0).map((p) => ({ run: r.run, seconds: p.seconds, accuracy: p.accuracy * 100 })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Fashion-MNIST, 4 ranks on a ${o.rate} link: test accuracy against training time`, subtitle: 'examples/train-fashion-mnist.js model, batch 32 per rank, AdamW; DiLoCo H = 50, outer Nesterov 0.7 / 0.9' },
    width: 560,
    height: 300,
    data: { values },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'seconds', type: 'quantitative', scale: { type: 'log' }, title: 'training wall-clock (s, log scale; evaluation excluded)' },
          y: { field: 'accuracy', type: 'quantitative', scale: { domain: [70, 90] }, title: 'test accuracy (%)' },
          color: { field: 'run', type: 'nominal', title: 'strategy' },
        },
      },
      { mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { datum: o.target * 100 } } },
    ],
  };
}

async function parent(o) {
  const os = require('node:os');
  const results = o.load ? o.load.split(',').flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8'))) : [];
  for (const run of o.load ? [] : o.runs) {
    const out = path.join(os.tmpdir(), `diloco-race-${process.pid}-${run}.json`);
    const argv = ['--run', run, '--out', out, '--rate', o.rate, '--target', String(o.target), '--eval-every', String(o.evalEvery), '--max-steps', String(o.maxSteps)];
    const status = launchBench(__filename, 4, argv, { rate: o.rate === 'none' ? undefined : o.rate });
    if (status !== 0) throw new Error(`${run}: the ranks exited with ${status}`);
    results.push(JSON.parse(fs.readFileSync(out, 'utf8')));
    fs.rmSync(out, { force: true });
  }
  const ddp = results.find((r) => r.run === 'ddp');
  o.rate = results[0]?.rate ?? o.rate;
  console.log(`\n| strategy | reached ${(o.target * 100).toFixed(0)}% at step | training seconds to it | vs DDP | accuracy then | ms per inner step | steps run | sync rounds | MB sent by rank 0 |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const t = r.reached ? r.reached.seconds : null;
    const ratio = t !== null && ddp?.reached ? `${(ddp.reached.seconds / t).toFixed(1)}× sooner` : '—';
    console.log(`| ${r.run} | ${r.reached ? r.reached.step : `not in ${r.steps}`} | ${t !== null ? t.toFixed(1) : '—'} | ${r.run === 'ddp' ? '1×' : ratio} | ${r.reached ? (r.reached.accuracy * 100).toFixed(2) + '%' : '—'} | ${((r.seconds / r.steps) * 1000).toFixed(1)} | ${r.steps} | ${r.syncRounds} | ${(r.bytesSent / 1e6).toFixed(1)} |`);
  }
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(results, null, 2) + '\n');
  if (o.plot) {
    const { renderSvg } = require('../dist/bench/plot');
    fs.writeFileSync(o.plot, await renderSvg(plotSpec(results, o)));
  }
}

const o = parse(process.argv.slice(2));
if (isBenchRank()) {
  rankMain(o).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  parent(o).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
