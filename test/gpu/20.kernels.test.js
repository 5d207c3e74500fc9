'use strict';
// The CUDA kernels of libcollectives_cuda against the host code, through the
// collectives_cuda_selftest program CMake builds beside it (native/gpu/kernels/
// selftest.cc): the codecs byte for byte, AdamW / Nesterov within float32
// rounding (bitwise expected), axpy / scale / cast bit for bit, in C++.
// test/gpu/25 checks the same kernels through the JavaScript API.
// Skips, saying why, without a GPU or without the CUDA build. With
// COLLECTIVES_GPU_BENCH=1 it also prints the codec throughput table.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const release = path.join(__dirname, '..', '..', 'build', 'Release');
const selftest = path.join(release, 'collectives_cuda_selftest');
const library = path.join(release, 'libcollectives_cuda.so');

function whyNoGpu() {
  if (!fs.existsSync(library) || !fs.existsSync(selftest)) {
    return `the CUDA part is not built (no ${path.relative(process.cwd(), library)}: nvcc was not found or COLLECTIVES_CUDA=0)`;
  }
  if (fs.existsSync('/dev/nvidia0')) return null;
  const smi = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
  if (smi.status === 0 && /GPU \d/.test(smi.stdout)) return null;
  return 'no NVIDIA GPU on this machine (no /dev/nvidia0, nvidia-smi lists none)';
}

describe('gpu 20: CUDA kernels against the host code', function () {
  const why = whyNoGpu();

  before(function () {
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
  });

  it('codecs bitwise equal to the CPU codecs; AdamW, Nesterov, axpy, scale, cast equal to the host ops', function () {
    this.timeout(600000);
    const args = process.env.COLLECTIVES_GPU_BENCH === '1' ? ['--bench'] : [];
    const r = spawnSync(selftest, args, { encoding: 'utf8' });
    process.stdout.write(r.stdout.replace(/^/gm, '      '));
    if (r.status === 77) {
      console.log('      skipped: the selftest found no usable CUDA device');
      this.skip();
    }
    assert.equal(r.status, 0, `collectives_cuda_selftest failed:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /checks, 0 failed/);
  });
});
