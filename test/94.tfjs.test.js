'use strict';
// collectives/tfjs: TF.js variables ⇄ ParameterSet on the cpu and wasm backends. Values and
// gradients must cross bit for bit (they are copies, never recomputed), in the layout and under
// the names of the model's weights, and no call may leave a tensor behind.

const assert = require('node:assert/strict');
const Module = require('node:module');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
require('@tensorflow/tfjs-backend-wasm');
const tfl = require('@tensorflow/tfjs-layers');
const { tfjsParameters, TfjsParameters } = require('../dist/training/tfjs');

function bits(a) {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function assertSameBits(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = bits(actual);
  const e = bits(expected);
  for (let i = 0; i < a.length; i++) if (a[i] !== e[i]) assert.fail(`${what}: element ${i}: got ${actual[i]}, expected ${expected[i]}`);
}

// Values with every kind of float32 bit pattern that a copy could disturb.
function patterned(n, salt) {
  const out = new Float32Array(n);
  const special = [0, -0, 1e-45, -1e-40, 3.4028234663852886e38, -1.1754943508222875e-38, 0.1, -7];
  for (let i = 0; i < n; i++) out[i] = i % 5 === 0 ? special[(i + salt) % special.length] : Math.sin(i * 12.9898 + salt) * 43758.5453 % 3;
  return out;
}

function model() {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [6], units: 5, activation: 'relu', kernelInitializer: 'glorotNormal', biasInitializer: 'randomNormal' }),
      tfl.layers.dense({ units: 3, kernelInitializer: 'glorotNormal' }),
    ],
  });
}

function lossOf(m, x, y) {
  return () => tf.losses.softmaxCrossEntropy(y, m.predict(x));
}

function rejectsWith(f, code, ...patterns) {
  assert.throws(f, (err) => {
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

for (const backend of ['cpu', 'wasm']) {
  describe(`94 tfjs (${backend} backend)`, function () {
    this.timeout(20000);
    let x;
    let y;
    before(async function () {
      assert.ok(await tf.setBackend(backend), `backend ${backend}`);
      await tf.ready();
      x = tf.tensor2d(patterned(4 * 6, 1).map((v) => (Number.isFinite(v) && Math.abs(v) < 10 ? v : 0.5)), [4, 6]);
      y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d([0, 2, 1, 2], 'int32'), 3), 'float32'));
    });
    after(() => tf.dispose([x, y]));

    it("a model's trainable weights, under their layer names and in their shapes, in order", function () {
      const m = model();
      const b = tfjsParameters(m);
      assert.ok(b instanceof TfjsParameters);
      const names = m.trainableWeights.map((w) => w.name);
      assert.match(names[0], /^dense_Dense\d+\/kernel$/);
      assert.deepEqual(b.names, names);
      assert.deepEqual(b.params.tensors.map((t) => t.name), names);
      assert.deepEqual(b.params.tensors.map((t) => t.shape), [[6, 5], [5], [5, 3], [3]]);
      assert.equal(b.params.size, 30 + 5 + 15 + 3);
      assert.equal(b.variables.length, 4);
      assert.equal(b.variables[0], m.trainableWeights[0].read());
      m.dispose();
    });

    it('pull copies the values bit for bit; push writes them back bit for bit', function () {
      const m = model();
      const b = tfjsParameters(m);
      for (const w of m.trainableWeights) assertSameBits(b.params.view(w.name), w.read().dataSync(), `pull ${w.name}`);
      const values = patterned(b.params.size, 3);
      b.params.data.set(values);
      b.push();
      for (const t of b.params.tensors) {
        assertSameBits(m.getWeights()[b.names.indexOf(t.name)].dataSync(), values.subarray(t.offset, t.offset + t.size), `push ${t.name}`);
      }
      // The variables are copies: changing params.data afterwards leaves them alone.
      b.params.data.fill(42);
      assert.notEqual(m.trainableWeights[0].read().dataSync()[0], 42);
      b.pull();
      assertSameBits(b.params.data.subarray(0, b.params.size), values, 'pull after push');
      m.dispose();
    });

    it('a list of tf.Variables (and LayerVariables) works the same', function () {
      const v1 = tf.variable(tf.tensor2d([[1, 2], [3, 4]]), true, `v1_${backend}`);
      const v2 = tf.variable(tf.scalar(-0.5), true, `v2_${backend}`);
      const b = tfjsParameters([v1, v2]);
      assert.deepEqual(b.names, [`v1_${backend}`, `v2_${backend}`]);
      assert.deepEqual([...b.params.data.subarray(0, 5)], [1, 2, 3, 4, -0.5]);
      b.params.data.set([5, 6, 7, 8, 9]);
      b.push();
      assert.deepEqual([...v1.dataSync()], [5, 6, 7, 8]);
      assert.deepEqual(v1.shape, [2, 2]);
      assert.equal(v2.dataSync()[0], 9);
      const m = model();
      const mixed = tfjsParameters([m.trainableWeights[1], v2]);
      assert.deepEqual(mixed.names, [m.trainableWeights[1].name, `v2_${backend}`]);
      tf.dispose([v1, v2]);
      m.dispose();
    });

    it('setGradients copies tf.variableGrads values bit for bit; backward() gives the same', function () {
      const m = model();
      const b = tfjsParameters(m);
      const { value, grads } = tf.variableGrads(lossOf(m, x, y), b.variables);
      b.setGradients(grads);
      for (const name of b.names) assertSameBits(b.params.gradView(name), grads[name].dataSync(), `grad ${name}`);
      const expected = Float32Array.from(b.params.grad);
      const expectedLoss = value.dataSync()[0];
      tf.dispose(grads);
      value.dispose();
      b.params.zeroGrad();
      const loss = b.backward(lossOf(m, x, y));
      assert.equal(loss, expectedLoss);
      assertSameBits(b.params.grad, expected, 'backward');
      assert.ok(expected.some((g) => g !== 0));
      m.dispose();
    });

    it('no tensors are left behind by making the binding, pull, push, setGradients and backward', function () {
      const m = model();
      const start = tf.memory().numTensors;
      const b = tfjsParameters(m);
      b.pull();
      b.params.data.set(patterned(b.params.size, 5));
      b.push();
      b.push();
      const { value, grads } = tf.variableGrads(lossOf(m, x, y), b.variables);
      b.setGradients(grads);
      tf.dispose(grads);
      value.dispose();
      for (let i = 0; i < 3; i++) b.backward(lossOf(m, x, y));
      assert.equal(tf.memory().numTensors, start);
      m.dispose();
    });

    it('a missing gradient names the variable; allowMissing takes it as zero', function () {
      const used = tf.variable(tf.tensor1d([1, 2, 3]), true, `used_${backend}`);
      const unused = tf.variable(tf.tensor1d([4, 5]), true, `unused_${backend}`);
      const b = tfjsParameters([used, unused]);
      const f = () => tf.sum(tf.square(used));
      const start = tf.memory().numTensors;
      b.params.grad.fill(7);
      rejectsWith(() => b.backward(f), 'INVALID_ARGUMENT', new RegExp(`grads\\["unused_${backend}"\\]`), /shape \[2\]/, /allowMissing/);
      assert.deepEqual([...b.params.grad.subarray(0, 5)], [7, 7, 7, 7, 7], 'nothing copied on error');
      assert.equal(tf.memory().numTensors, start, 'no leak on error');
      b.backward(f, { allowMissing: true });
      assert.deepEqual([...b.params.grad.subarray(0, 5)], [2, 4, 6, 0, 0]);
      tf.dispose([used, unused]);
    });

    it('a mis-shaped or non-float32 gradient names the variable and both shapes; other keys are ignored', function () {
      const v = tf.variable(tf.zeros([2, 3]), true, `w_${backend}`);
      const b = tfjsParameters([v]);
      const wrong = tf.zeros([3, 2]);
      rejectsWith(() => b.setGradients({ [v.name]: wrong }), 'INVALID_ARGUMENT', new RegExp(`w_${backend}`), /shape \[2, 3\]/, /got shape \[3, 2\]/);
      const ints = tf.zeros([2, 3], 'int32');
      rejectsWith(() => b.setGradients({ [v.name]: ints }), 'INVALID_ARGUMENT', /float32/, /int32/);
      rejectsWith(() => b.setGradients(null), 'INVALID_ARGUMENT', /grads/);
      rejectsWith(() => b.setGradients({ [v.name]: [1, 2] }), 'INVALID_ARGUMENT', /a tensor/);
      const good = tf.ones([2, 3]);
      b.setGradients({ [v.name]: good, other_variable: wrong });
      assert.deepEqual([...b.params.grad.subarray(0, 6)], [1, 1, 1, 1, 1, 1]);
      tf.dispose([v, wrong, ints, good]);
    });

    it('a weight constraint applies on push, and params.data takes the constrained value', function () {
      const m = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 2, kernelConstraint: 'nonNeg' })] });
      const b = tfjsParameters(m);
      const start = tf.memory().numTensors;
      b.params.data.set([-1, 2, 3, -4, 0.5, -0.5]);
      b.push();
      assert.deepEqual([...m.getWeights()[0].dataSync()], [0, 2, 3, 0]);
      assert.deepEqual([...m.getWeights()[1].dataSync()], [0.5, -0.5]);
      assert.deepEqual([...b.params.data.subarray(0, 6)], [0, 2, 3, 0, 0.5, -0.5]);
      assert.equal(tf.memory().numTensors, start);
      m.dispose();
    });

    it('bad sources and options are INVALID_ARGUMENT', function () {
      rejectsWith(() => tfjsParameters({}), 'INVALID_ARGUMENT', /source/);
      rejectsWith(() => tfjsParameters([]), 'INVALID_ARGUMENT', /variables/, /at least one/);
      rejectsWith(() => tfjsParameters([{ name: 'x' }]), 'INVALID_ARGUMENT', /variables\[0\]/);
      const iv = tf.variable(tf.tensor1d([1], 'int32'), true, `int_${backend}`);
      rejectsWith(() => tfjsParameters([iv]), 'INVALID_ARGUMENT', /variables\[0\]/, /float32/, /int32/);
      const fv = tf.variable(tf.tensor1d([1]), true, `f_${backend}`);
      rejectsWith(() => tfjsParameters([fv, fv]), 'INVALID_ARGUMENT', /variables\[1\]/, /variables\[0\] is also named/);
      rejectsWith(() => tfjsParameters([fv], { devise: 0 }), 'INVALID_ARGUMENT', /options\.devise/);
      rejectsWith(() => tfjsParameters([fv], { tf: {} }), 'INVALID_ARGUMENT', /options\.tf/);
      rejectsWith(() => tfjsParameters([fv]).backward(3), 'INVALID_ARGUMENT', /\bf\b/);
      tf.dispose([iv, fv]);
    });

    it('options.tf is the module used; without it a missing tfjs-core says to npm install it', function () {
      const v = tf.variable(tf.tensor1d([1, 2]), true, `opt_${backend}`);
      let made = 0;
      const counting = { ...tf, tensor: (...a) => (made++, tf.tensor(...a)) };
      const b = tfjsParameters([v], { tf: counting });
      b.push();
      assert.equal(made, 1);
      const load = Module._load;
      Module._load = function (request, ...rest) {
        if (request === '@tensorflow/tfjs-core') throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
        return load.call(this, request, ...rest);
      };
      try {
        const lazy = tfjsParameters([v]); // pull() needs no module
        assert.deepEqual([...lazy.params.data.subarray(0, 2)], [1, 2]);
        rejectsWith(() => lazy.push(), 'MODULE_NOT_FOUND', /npm install @tensorflow\/tfjs-core/, /options\.tf/);
      } finally {
        Module._load = load;
      }
      v.dispose();
    });
  });
}

describe('94 tfjs: entry points', function () {
  it('collectives/tfjs loads as ESM too, without loading tfjs-core itself', async function () {
    const esm = await import('../dist/training/tfjs/index.mjs');
    assert.equal(esm.tfjsParameters, tfjsParameters);
    const { execFileSync } = require('node:child_process');
    const out = execFileSync(process.execPath, [
      '-e',
      "require('./dist/training/tfjs'); console.log(Object.keys(require.cache).some((k) => k.includes('tfjs-core')))",
    ], { cwd: require('node:path').join(__dirname, '..'), encoding: 'utf8' });
    assert.equal(out.trim(), 'false');
  });
});
