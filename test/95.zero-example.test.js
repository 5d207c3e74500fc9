'use strict';
// The example's ZeRO strategies (examples/strategies/zero.js) on 2 ranks: zero++ trains above
// chance, writes a sharded checkpoint and resumes from it to the same bits (consolidated, the
// two runs' final models are byte for byte equal); its flags are refused on another strategy.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FASHION_MNIST_DIR, consolidateZeroCheckpoint, readZeroIndex } = require('../dist/training');
const { launchWorker, assertSucceeded } = require('./helpers/launch');

const EXAMPLE = path.join('..', '..', 'examples', 'train-fashion-mnist.js');

describe('95 ZeRO in the training example', function () {
  let tmp;
  before(function () {
    if (!fs.existsSync(FASHION_MNIST_DIR)) {
      console.log(`      skipped: ${FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist)`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-example-'));
  });
  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const train = (args) => launchWorker(EXAMPLE, { nproc: 2, args, killAfterMs: 120000 });

  it('zero++ trains, saves shards every rank wrote, and resumes to the same bits', async function () {
    this.timeout(240000);
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    const json = path.join(tmp, 'a.json');
    const r = await train(['--strategy', 'zero++', '--steps', '60', '--log-every', '30', '--save', a, '--save-every', '30', '--json', json]);
    assertSucceeded(r, 'zero++ --steps 60');
    const result = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.equal(result.syncRounds, 60);
    assert.deepEqual([result.stage, result.quantizedWeights, result.hierarchicalPartition, result.quantizedGradients], [3, 'int8', 2, 'int4']);
    assert.ok(result.testAccuracy > 0.5, `test accuracy ${result.testAccuracy}`);
    const { index } = readZeroIndex(path.join(a, 'step-00000060'));
    assert.equal(index.files.length, 2);
    const resumed = await train(['--strategy', 'zero++', '--steps', '60', '--resume', path.join(a, 'step-00000030'), '--save', b, '--log-every', '30']);
    assertSucceeded(resumed, 'zero++ --resume');
    assert.match(resumed.stdout, /resumed from .*step-00000030 at step 30/);
    const want = fs.readFileSync(consolidateZeroCheckpoint(path.join(a, 'step-00000060'), path.join(tmp, 'a.safetensors')));
    const got = fs.readFileSync(consolidateZeroCheckpoint(path.join(b, 'step-00000060'), path.join(tmp, 'b.safetensors')));
    assert.ok(want.equals(got), 'the resumed run ends with other parameters');
  });

  it("refuses ZeRO's flags on ddp, and a bad value", async function () {
    this.timeout(60000);
    const r = await launchWorker(EXAMPLE, { nproc: 1, args: ['--strategy', 'ddp', '--hpz', '2'], killAfterMs: 50000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /--hpz: not a flag of --strategy ddp/);
    const q = await launchWorker(EXAMPLE, { nproc: 1, args: ['--strategy', 'zero3', '--quantized-gradients', 'int3'], killAfterMs: 50000 });
    assert.notEqual(q.code, 0);
    assert.match(q.stderr + q.stdout, /--quantized-gradients: expected one of none, int8, int4, fp8e4m3, got "int3"/);
  });
});
