// The Fashion-MNIST model of the training examples: an MLP (784-256-10, ReLU, logits for
// softmax cross-entropy) in TF.js, batches gathered into tensors, and test accuracy.
'use strict';

const tf = require('@tensorflow/tfjs-core');
const tfl = require('@tensorflow/tfjs-layers');
const { FASHION_MNIST_CLASSES } = require('collectives/training');

const PIXELS = 784;
const CLASSES = FASHION_MNIST_CLASSES.length;
const BACKENDS = ['wasm', 'cpu'];

/** Loads and selects a TF.js backend ('wasm' or 'cpu'). */
async function useBackend(name) {
  if (name === 'wasm') require('@tensorflow/tfjs-backend-wasm');
  else require('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend(name);
  await tf.ready();
}

function buildModel(seed) {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [PIXELS], units: 256, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
      // Logits: softmaxCrossEntropy applies the softmax, in a numerically stable form.
      tfl.layers.dense({ units: CLASSES, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
}

/** The batch's rows gathered from the flat image array, as TF.js tensors. */
function batchTensors(set, indices) {
  const x = new Float32Array(indices.length * PIXELS);
  const y = new Int32Array(indices.length);
  indices.forEach((ix, i) => {
    x.set(set.images.subarray(ix * PIXELS, (ix + 1) * PIXELS), i * PIXELS);
    y[i] = set.labels[ix];
  });
  return tf.tidy(() => ({ x: tf.tensor2d(x, [indices.length, PIXELS]), y: tf.oneHot(tf.tensor1d(y, 'int32'), CLASSES) }));
}

/** One training step's loss and gradients through the binding (collectives/tfjs). */
function trainStep(binding, model, set, indices) {
  const { x, y } = batchTensors(set, indices);
  const loss = binding.backward(() => tf.losses.softmaxCrossEntropy(y, model.predict(x)));
  tf.dispose([x, y]);
  return loss;
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

module.exports = { PIXELS, CLASSES, BACKENDS, useBackend, buildModel, batchTensors, trainStep, accuracy };
