'use strict';
// DiLoCo on DeviceBuffers against the same run on host arrays, on the host-memory stand-ins of
// the CUDA runtime, NCCL and the kernels (test/fixtures/fake-gpu), which run the device code
// paths with the host's arithmetic: the bits must be the host's. One rank (the stand-in NCCL
// joins one-rank communicators only), every mode, float32 and int8 rounds, and a checkpoint
// saved from device memory that a host run resumes from.

const assert = require('node:assert/strict');
const { runOnStandIns } = require('./helpers/device-worker');

describe('98 DiLoCo on DeviceBuffers (host-memory stand-ins)', function () {
  it('every mode, float32 and int8, gives the host bits; a device checkpoint resumes on host', function () {
    this.timeout(120000);
    const { out, stderr } = runOnStandIns(this, 'diloco-device.js');
    for (const mode of ['streaming', 'eager', 'delayed']) {
      for (const q of ['false', 'int8']) {
        assert.deepEqual(out[`${mode} ${q}`], { local: true, global: true, resumedOnHost: true, moved: true, maxDiff: 0 }, `${mode}, quantize ${q}`);
      }
    }
    // Every device buffer DiLoCo allocated (θ_global, momentum, Δ, spare, residuals) was freed.
    assert.match(stderr, /fake-cuda: 0 live allocations\n/);
  });
});
