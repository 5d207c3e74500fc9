// How much of DataParallel's communication hides behind the backward pass, and what
// DataParallel costs over the bare all-reduce of the same bytes. Run it as a plain node script;
// it starts the ranks through collectives-run:
//
//   node bench/ddp-overlap.js --nproc 2 [--layers 8] [--width 512] [--batch 64] [--steps 10]
//                             [--shaped 1gbit] [--backend wasm|cpu]
//
// The model: `layers` dense layers of width × width float32 weights. Each step runs their
// backward pass layer by layer, last layer first, with real TF.js compute per layer (the
// weight gradient x_iᵀ·δ of a batch), and each layer's gradient is a bucket of its own. Per
// step, times are the max over ranks; each mode runs in turn within every round so that noise
// falls on all of them alike, and the table gives the median over the rounds:
//   C        compute alone (the backward pass, no communication)
//   M        communication alone (every bucket ready at once, DataParallel.synchronize())
//   M1       DataParallel's communication with all gradients in one bucket
//   bare     the same bytes as one bare comm.allReduce of the flat gradients (M1 − bare is
//            DataParallel's own cost)
//   serial   compute, then communication (gradReady only after the backward pass)
//   overlap  DataParallel as meant: gradReady(layer) as each layer's gradient is done
// overlap efficiency = (C + M − overlap) / min(C, M): 1 when the shorter one hides entirely.
//
// --shaped RATE runs every rank in a network namespace whose loopback is shaped to RATE
// (bench/shaped-link.js).
'use strict';

const { parseArgs } = require('node:util');
const { benchMain } = require('./shaped-link');

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      nproc: { type: 'string', default: '2' },
      layers: { type: 'string', default: '8' },
      width: { type: 'string', default: '512' },
      batch: { type: 'string', default: '64' },
      steps: { type: 'string', default: '10' },
      shaped: { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const int = (k) => {
    const v = Number(values[k]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k}: expected a positive integer, got ${JSON.stringify(values[k])}`);
    return v;
  };
  return { nproc: int('nproc'), layers: int('layers'), width: int('width'), batch: int('batch'), steps: int('steps'), shaped: values.shaped, backend: values.backend };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

async function rankMain(o) {
  const tf = require('@tensorflow/tfjs-core');
  require(o.backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-backend-cpu');
  await tf.setBackend(o.backend);
  const { init } = require('..');
  const { ParameterSet, DataParallel } = require('../dist/training');
  const comm = await init();
  const specs = Array.from({ length: o.layers }, (_, i) => ({ name: `layer${i}`, shape: [o.width, o.width] }));
  const params = new ParameterSet(specs);
  const bucketMB = (o.width * o.width * 4) / 2 ** 20;
  // One bucket per layer: the cap closes each bucket on its own layer.
  const dp = await DataParallel.create(comm, params, { bucketCapMB: bucketMB, firstBucketCapMB: bucketMB });
  const whole = await DataParallel.create(comm, params, { bucketCapMB: 1 << 12, firstBucketCapMB: 1 << 12 });
  const xs = specs.map((_, i) => tf.randomNormal([o.batch, o.width], 0, 1, 'float32', 11 + i));
  const delta = tf.randomNormal([o.batch, o.width], 0, 1, 'float32', 7);

  const backwardLayer = (i) => {
    const g = tf.matMul(xs[i], delta, true, false);
    params.gradView(`layer${i}`).set(g.dataSync());
    g.dispose();
  };
  const modes = {
    C: async () => {
      for (let i = o.layers - 1; i >= 0; i--) backwardLayer(i);
    },
    M: async () => {
      dp.gradsReady();
      await dp.synchronize();
    },
    M1: async () => {
      whole.gradsReady();
      await whole.synchronize();
    },
    bare: async () => {
      await comm.allReduce(params.grad, { op: 'avg' });
    },
    serial: async () => {
      for (let i = o.layers - 1; i >= 0; i--) backwardLayer(i);
      dp.gradsReady();
      await dp.synchronize();
    },
    overlap: async () => {
      for (let i = o.layers - 1; i >= 0; i--) {
        backwardLayer(i);
        dp.gradReady(`layer${i}`);
      }
      await dp.synchronize();
    },
  };
  const times = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
  const t = new Float64Array(1);
  for (let round = -1; round < o.steps; round++) {
    for (const [name, run] of Object.entries(modes)) {
      await comm.barrier();
      const start = performance.now();
      await run();
      t[0] = performance.now() - start;
      await comm.allReduce(t, { op: 'max' });
      // Round -1 warms up (TF.js kernels, Gloo's connections and cached algorithms).
      if (round >= 0) times[name].push(t[0]);
    }
  }
  if (comm.rank === 0) {
    const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    const eff = (m.C + m.M - m.overlap) / Math.min(m.C, m.M);
    const mb = (params.length * 4) / 1e6;
    console.log(`# ${comm.size} ranks, ${o.shaped ? `loopback shaped to ${o.shaped} (tbf, MTU 1500)` : 'loopback'}; ${o.layers} layers of ${o.width}×${o.width} (${mb.toFixed(1)} MB of gradients, ${dp.buckets.length} buckets), batch ${o.batch}, TF.js ${o.backend}; ms per step, median of ${o.steps}, max over ranks`);
    console.log(`| ranks | link | C compute | M DataParallel comm (${dp.buckets.length} buckets) | M1 (1 bucket) | bare all-reduce | serial | overlapped | overlap efficiency | M1 / bare |`);
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    const f = (x) => x.toFixed(1);
    console.log(`| ${comm.size} | ${o.shaped ?? 'loopback'} | ${f(m.C)} | ${f(m.M)} | ${f(m.M1)} | ${f(m.bare)} | ${f(m.serial)} | ${f(m.overlap)} | ${eff.toFixed(2)} | ${(m.M1 / m.bare).toFixed(2)} |`);
  }
  await comm.destroy();
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const o = parse(argv);
  benchMain(__filename, () => rankMain(o), o.nproc, argv, { rate: o.shaped });
}
