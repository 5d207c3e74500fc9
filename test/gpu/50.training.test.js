'use strict';
// The training layer on a real GPU: the device runs of test/95, 97, 98 and 99 (DataParallel with
// its hooks, AdamW and SGD, ZeRO stages 1–3 and ZeRO++, DiLoCo in every mode, elastic DiLoCo and
// DataParallel recovering from a lost generation, device checkpoints read on host), each against the same steps on host arrays, one rank. The stand-ins give the host's
// bits; a GPU's kernels may round differently, so here each case must move the weights and stay
// within a tolerance of the host (quantized cases: within a quantization step), and the cases
// that also give the host's bits are printed. Needs CUDA and NCCL (skipped, saying why).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const DIST = path.join(__dirname, '..', '..', 'dist');
const { runDeviceWorker } = require('../helpers/device-worker');
const { backends } = require(DIST);

// Float32 paths: the kernels' rounding over a few steps. Quantized rounds (bf16, int8, ZeRO++'s
// int8 weights and int4 gradients): one code's step of values of magnitude about 5.
const FLOAT_TOLERANCE = 1e-4;
const QUANTIZED_TOLERANCE = 0.1;

const runWorker = (file, dir) => runDeviceWorker(file, dir, {}).out;

function checkCases(out, quantized) {
  const identical = [];
  // The checkpoint entries carry no maxDiff: the callers check them.
  const cases = Object.entries(out).filter(([, c]) => c.maxDiff !== undefined);
  assert.ok(cases.length > 0, `no cases in ${JSON.stringify(out)}`);
  for (const [name, c] of cases) {
    const tolerance = quantized(name) ? QUANTIZED_TOLERANCE : FLOAT_TOLERANCE;
    assert.ok(c.moved, `${name}: the weights did not move`);
    assert.ok(c.maxDiff <= tolerance, `${name}: device and host differ by ${c.maxDiff} (tolerance ${tolerance})`);
    if (c.maxDiff === 0) identical.push(name);
  }
  console.log(`      the host's bits: ${identical.length ? identical.join(', ') : 'none'} of ${cases.length} cases`);
}

describe('gpu 50 the training layer on a GPU', function () {
  this.timeout(120000);
  let tmp;
  before(function () {
    const b = backends();
    if (!b.cuda.available || !b.nccl.available) {
      console.log(`      skipped: ${!b.cuda.available ? `no GPU: ${b.cuda.reason}` : `no NCCL: ${b.nccl.reason}`}`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-gpu-training-'));
  });
  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('DataParallel (none, bf16, int8), AdamW, SGD and a device checkpoint', function () {
    const out = runWorker('training-device.js', path.join(tmp, 'ddp'));
    checkCases(out, (name) => name !== 'none');
    assert.deepEqual(out.checkpoint, { params: true, step: true, state: true }, 'a checkpoint saved from device memory holds what the device had');
  });

  it('ZeRO stages 1–3 and ZeRO++, and a device checkpoint read on host', function () {
    const out = runWorker('zero-device.js', path.join(tmp, 'zero'));
    checkCases(out, (name) => name === 'zeroPP');
    assert.deepEqual(out.checkpoint, { params: true }, 'a checkpoint saved from device memory holds what the device had');
  });

  it('DiLoCo in every mode, float32 and int8 rounds', function () {
    const out = runWorker('diloco-device.js', path.join(tmp, 'diloco'));
    checkCases(out, (name) => name.endsWith('int8'));
  });

  it('elastic DiLoCo and DataParallel recovering from a lost generation', function () {
    const out = runWorker('elastic-device.js', path.join(tmp, 'elastic'));
    checkCases(out, (name) => name.endsWith('int8'));
    for (const [name, c] of Object.entries(out)) assert.deepEqual(c.generations, [2, 2, 1], `${name}: the lost runs formed a second generation`);
  });
});
