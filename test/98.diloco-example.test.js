'use strict';
// The example's --strategy diloco on 2 ranks: trains above chance with the bytes and rounds of
// its schedule, every rank saves its part, and a run resumed mid-way (a round of a fragment in
// flight at the save) ends with every rank's parameters bit for bit those of the run that did
// not stop.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FASHION_MNIST_DIR } = require('../dist/training');
const { launchWorker, assertSucceeded } = require('./helpers/launch');

const EXAMPLE = path.join('..', '..', 'examples', 'train-fashion-mnist.js');

describe('98 the example with --strategy diloco', function () {
  let tmp;
  before(function () {
    if (!fs.existsSync(FASHION_MNIST_DIR)) {
      console.log(`      skipped: ${FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist)`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-diloco-example-'));
  });
  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const flags = ['--strategy', 'diloco', '--sync-every', '20', '--fragments', '2', '--fragment-sync-delay', '3', '--quantize', 'int8', '--log-every', '30'];
  const train = (args) => launchWorker(EXAMPLE, { nproc: 2, args: [...flags, ...args], killAfterMs: 120000 });

  it('trains, saves on every rank and resumes to the same bits', async function () {
    this.timeout(240000);
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    const json = path.join(tmp, 'a.json');
    const r = await train(['--steps', '60', '--save', a, '--save-every', '28', '--json', json]);
    assertSucceeded(r, '--strategy diloco --steps 60');
    const result = JSON.parse(fs.readFileSync(json, 'utf8'));
    // 2 fragments synchronized once each per 20 steps: 6 rounds in 60 steps.
    assert.equal(result.syncRounds, 6);
    assert.ok(result.testAccuracy > 0.5, `test accuracy ${result.testAccuracy}`);
    for (const rank of [0, 1]) assert.ok(fs.existsSync(path.join(a, `rank-${rank}`, 'step-00000028', 'model.safetensors')), `rank ${rank} saved step 28`);

    // Fragment 0 syncs at steps 10, 30, 50 and launches 3 steps before: at step 28 it is in flight.
    const resumed = await train(['--steps', '60', '--resume', path.join(a, 'rank-0', 'step-00000028'), '--save', b]);
    assertSucceeded(resumed, '--strategy diloco --resume');
    assert.match(resumed.stdout, /resumed from .*step-00000028 at step 28/);
    for (const rank of [0, 1]) {
      const want = fs.readFileSync(path.join(a, `rank-${rank}`, 'step-00000060', 'model.safetensors'));
      const got = fs.readFileSync(path.join(b, `rank-${rank}`, 'step-00000060', 'model.safetensors'));
      assert.ok(got.equals(want), `rank ${rank}: the resumed run ends with other parameters than the run that did not stop`);
    }
  });

  it('refuses a flag of another strategy, and a bad value, naming them', async function () {
    const r = await launchWorker(EXAMPLE, { nproc: 1, args: ['--strategy', 'diloco', '--compress', 'int8'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--compress: not a flag of --strategy diloco/);
    const q = await launchWorker(EXAMPLE, { nproc: 1, args: ['--strategy', 'diloco', '--quantize', 'int3'] });
    assert.notEqual(q.code, 0);
    assert.match(q.stderr, /--quantize: expected one of none, int8, int4, fp8, got "int3"/);
  });
});
