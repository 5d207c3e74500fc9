'use strict';
// The examples a new user copies from must keep working as the README shows them.

const assert = require('node:assert/strict');
const { launchWorker, assertSucceeded } = require('./helpers/launch');

const EXAMPLES = '../../examples/';

function lineOf(stdout, rank) {
  return stdout.split('\n').find((l) => l.startsWith(`[rank${rank}]: `)) ?? '';
}

describe('60 examples', function () {
  it('allreduce.js prints the sum on each of 4 ranks', async function () {
    const r = await launchWorker(EXAMPLES + 'allreduce.js', { nproc: 4 });
    assertSucceeded(r, 'examples/allreduce.js');
    for (let rank = 0; rank < 4; rank++) {
      assert.equal(lineOf(r.stdout, rank), `[rank${rank}]: rank ${rank} of 4: [10, 10, 10, 10]`);
    }
  });

  it('subgroups.js reduces within halves and broadcasts over the world', async function () {
    const r = await launchWorker(EXAMPLES + 'subgroups.js', { nproc: 4 });
    assertSucceeded(r, 'examples/subgroups.js');
    // Even ranks 0 + 2 = 2, odd ranks 1 + 3 = 4.
    for (let rank = 0; rank < 4; rank++) {
      const half = rank % 2 === 0 ? 2 : 4;
      assert.match(lineOf(r.stdout, rank), new RegExp(`rank ${rank >> 1} of 2 in its half; sum over the half ${half}, broadcast 42$`));
    }
  });

  it('overlap.js averages every bucket while computing the next', async function () {
    const r = await launchWorker(EXAMPLES + 'overlap.js', { nproc: 2 });
    assertSucceeded(r, 'examples/overlap.js');
    // Every rank's first gradient value is sin(rank + 0 + 0); the mean over 2 ranks:
    const expected = ((Math.fround(Math.sin(0)) + Math.fround(Math.sin(1))) / 2).toFixed(6);
    for (let rank = 0; rank < 2; rank++) {
      assert.equal(lineOf(r.stdout, rank), `[rank${rank}]: rank ${rank}: 8 buckets averaged, first value ${expected}`);
    }
  });

  it('gpu-step.js says why it does not run where there is no usable GPU, and exits cleanly', async function () {
    const { backends } = require('../dist');
    const b = backends();
    if (b.cuda.available && b.nccl.available) {
      console.log('      skipped: this machine has a GPU (test/45 runs the example on the stand-ins)');
      this.skip();
    }
    const r = await launchWorker(EXAMPLES + 'gpu-step.js', { nproc: 2 });
    assertSucceeded(r, 'examples/gpu-step.js');
    const reason = !b.cuda.available ? b.cuda.reason : b.nccl.reason;
    for (let rank = 0; rank < 2; rank++) assert.equal(lineOf(r.stdout, rank), `[rank${rank}]: gpu-step: no GPU run here: ${reason}`);
  });

  describe('train-fashion-mnist.js (the training quick start)', function () {
    const fs = require('node:fs');
    const os = require('node:os');
    const path = require('node:path');
    const { readSafetensors, FASHION_MNIST_DIR } = require('../dist/training');
    let tmp;
    before(function () {
      if (!fs.existsSync(FASHION_MNIST_DIR)) {
        console.log(`      skipped: ${FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist)`);
        this.skip();
      }
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-train-'));
    });
    after(function () {
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    const train = (args) => launchWorker(EXAMPLES + 'train-fashion-mnist.js', { nproc: 2, args, killAfterMs: 150000 });

    it('trains on 2 ranks above chance, saves a checkpoint PyTorch reads, and resumes to the same bits', async function () {
      this.timeout(300000);
      const a = path.join(tmp, 'a');
      const b = path.join(tmp, 'b');
      const json = path.join(tmp, 'a.json');
      const r = await train(['--steps', '120', '--log-every', '40', '--save', a, '--save-every', '60', '--json', json]);
      assertSucceeded(r, 'train-fashion-mnist.js --steps 120');
      const result = JSON.parse(fs.readFileSync(json, 'utf8'));
      assert.equal(result.worldSize, 2);
      assert.equal(result.syncRounds, 120);
      // Ten classes: chance is 10%; 120 steps of 64 images reach well above it.
      assert.ok(result.testAccuracy > 0.5, `test accuracy ${result.testAccuracy}`);
      // One all-reduce of the 203,530 float32 gradients a step: 2(n−1)/n × 814,120 bytes on 2 ranks.
      assert.equal(result.bytesSent, 120 * 814120);
      assert.match(r.stdout, /\[rank0\]: step 40: loss \d/);

      // The model file holds the layers' tensors under their names, in the model's shapes.
      const tensors = readSafetensors(path.join(a, 'step-00000120', 'model.safetensors'));
      const shapes = Object.fromEntries([...tensors.tensors].map(([k, v]) => [k, v.shape]));
      assert.deepEqual(shapes, { 'dense_Dense1/kernel': [784, 256], 'dense_Dense1/bias': [256], 'dense_Dense2/kernel': [256, 10], 'dense_Dense2/bias': [10] });

      // Resuming the step-60 checkpoint gives step 120's parameters bit for bit.
      const resumed = await train(['--steps', '120', '--resume', path.join(a, 'step-00000060'), '--save', b, '--log-every', '60']);
      assertSucceeded(resumed, 'train-fashion-mnist.js --resume');
      assert.match(resumed.stdout, /resumed from .*step-00000060 at step 60/);
      const want = fs.readFileSync(path.join(a, 'step-00000120', 'model.safetensors'));
      const got = fs.readFileSync(path.join(b, 'step-00000120', 'model.safetensors'));
      assert.ok(got.equals(want), 'the resumed run ends with other parameters than the run that did not stop');
    });

    it('refuses a bad flag naming it', async function () {
      const r = await launchWorker(EXAMPLES + 'train-fashion-mnist.js', { nproc: 1, args: ['--compress', 'int3'] });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--compress: expected one of none, fp16, bf16, int8, int4, fp8, got "int3"/);
    });
  });
});
