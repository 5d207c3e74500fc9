// Fashion-MNIST with an MLP (784-256-10, ReLU, softmax cross-entropy) in TF.js, its weights in a
// collectives ParameterSet, AdamW (lr 1e-3, weight decay 0.01) from collectives/ops.
//
//   sudo apt-get install dataset-fashion-mnist      # or pass --data DIR
//   node examples/train-fashion-mnist.js --strategy none --epochs 1
//
// Only --strategy none (one process) runs for now; the data-parallel strategies are not in yet.
'use strict';

const { parseArgs } = require('node:util');
const tf = require('@tensorflow/tfjs-core');
const tfl = require('@tensorflow/tfjs-layers');
const { loadFashionMnist, DistributedSampler, batches, FASHION_MNIST_CLASSES } = require('collectives/training');
const { tfjsParameters } = require('collectives/tfjs');
const { adamwStep } = require('collectives/ops');

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    strategy: { type: 'string', default: 'none' },
    epochs: { type: 'string', default: '1' },
    'batch-size': { type: 'string', default: '64' },
    limit: { type: 'string' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'wasm' },
    'log-every': { type: 'string', default: '100' },
  },
});

const PIXELS = 784;
const CLASSES = FASHION_MNIST_CLASSES.length;

function buildModel() {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [PIXELS], units: 256, activation: 'relu' }),
      // Logits: softmaxCrossEntropy applies the softmax, in a numerically stable form.
      tfl.layers.dense({ units: CLASSES }),
    ],
  });
}

// The batch's rows gathered from the flat image array, as TF.js tensors.
function batchTensors(set, indices) {
  const x = new Float32Array(indices.length * PIXELS);
  const y = new Int32Array(indices.length);
  indices.forEach((ix, i) => {
    x.set(set.images.subarray(ix * PIXELS, (ix + 1) * PIXELS), i * PIXELS);
    y[i] = set.labels[ix];
  });
  return tf.tidy(() => ({ x: tf.tensor2d(x, [indices.length, PIXELS]), y: tf.oneHot(tf.tensor1d(y, 'int32'), CLASSES) }));
}

function accuracy(model, set) {
  let correct = 0;
  for (let start = 0; start < set.count; start += 1000) {
    const n = Math.min(1000, set.count - start);
    const predicted = tf.tidy(() => {
      const x = tf.tensor2d(set.images.subarray(start * PIXELS, (start + n) * PIXELS), [n, PIXELS]);
      return tf.argMax(model.predict(x), 1).dataSync();
    });
    for (let i = 0; i < n; i++) if (predicted[i] === set.labels[start + i]) correct++;
  }
  return correct / set.count;
}

async function main() {
  if (args.strategy !== 'none') {
    throw new Error(`--strategy ${args.strategy}: only --strategy none (one process) is available in this example for now`);
  }
  if (args.backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  else require('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend(args.backend);
  await tf.ready();

  const limit = args.limit === undefined ? undefined : Number(args.limit);
  const dir = args.data;
  const train = loadFashionMnist({ dir, split: 'train', ...(limit && { limit }) });
  const test = loadFashionMnist({ dir, split: 'test', ...(limit && { limit }) });
  const rank = 0;
  const worldSize = 1;
  const batchSize = Number(args['batch-size']);
  const logEvery = Number(args['log-every']);

  const model = buildModel();
  const binding = tfjsParameters(model);
  const { params } = binding;
  const expAvg = new Float32Array(params.length);
  const expAvgSq = new Float32Array(params.length);
  const sampler = new DistributedSampler(train.count, { numReplicas: worldSize, rank, seed: Number(args.seed) });
  console.log(`${train.count} training and ${test.count} test images, ${params.size} parameters, ${args.backend} backend`);

  let step = 0;
  for (let epoch = 0; epoch < Number(args.epochs); epoch++) {
    sampler.setEpoch(epoch);
    const started = Date.now();
    let sum = 0;
    let seen = 0;
    for (const indices of batches(sampler.indices(), batchSize)) {
      const { x, y } = batchTensors(train, indices);
      const loss = binding.backward(() => tf.losses.softmaxCrossEntropy(y, model.predict(x)));
      tf.dispose([x, y]);
      step++;
      adamwStep(params.data, params.grad, expAvg, expAvgSq, { lr: 1e-3, weightDecay: 0.01, step });
      binding.push();
      sum += loss;
      seen++;
      if (step % logEvery === 0) console.log(`epoch ${epoch} step ${step} loss ${(sum / seen).toFixed(4)}`);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`epoch ${epoch}: mean loss ${(sum / seen).toFixed(4)}, test accuracy ${(accuracy(model, test) * 100).toFixed(2)}% (${seconds.toFixed(1)} s)`);
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
