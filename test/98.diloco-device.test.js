'use strict';
// DiLoCo on DeviceBuffers against the same run on host arrays, on the host-memory stand-ins of
// the CUDA runtime, NCCL and the kernels (test/fixtures/fake-gpu), which run the device code
// paths with the host's arithmetic: the bits must be the host's. One rank (the stand-in NCCL
// joins one-rank communicators only), every mode, float32 and int8 rounds, and a checkpoint
// saved from device memory that a host run resumes from.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fakeGpuEnv } = require('./helpers/fake-gpu');
const { runDeviceWorker } = require('./helpers/device-worker');

describe('98 DiLoCo on DeviceBuffers (host-memory stand-ins)', function () {
  let tmp;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-diloco-device-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('every mode, float32 and int8, gives the host bits; a device checkpoint resumes on host', function () {
    this.timeout(120000);
    const env = fakeGpuEnv(path.join(tmp, 'fakes'));
    if (env === null) this.skip();
    const { out, stderr } = runDeviceWorker('diloco-device.js', path.join(tmp, 'ckpt'), env);
    for (const mode of ['streaming', 'eager', 'delayed']) {
      for (const q of ['false', 'int8']) {
        assert.deepEqual(out[`${mode} ${q}`], { local: true, global: true, resumedOnHost: true, moved: true, maxDiff: 0 }, `${mode}, quantize ${q}`);
      }
    }
    // Every device buffer DiLoCo allocated (θ_global, momentum, Δ, spare, residuals) was freed.
    assert.match(stderr, /fake-cuda: 0 live allocations\n/);
  });
});
