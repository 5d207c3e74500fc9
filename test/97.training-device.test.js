'use strict';
// The training layer on DeviceBuffers, against the same steps on host arrays: ParameterSet on a
// device, DataParallel's hooks (plain, bf16, int8), AdamW and SGD, and checkpoints, run on the
// host-memory stand-ins of the CUDA runtime, NCCL and the kernels (test/fixtures/fake-gpu), which
// run the device code paths with the host's arithmetic: the bits must be the host's. One rank
// (the stand-in NCCL joins one-rank communicators only).

const assert = require('node:assert/strict');
const { runOnStandIns } = require('./helpers/device-worker');

describe('97 the training layer on DeviceBuffers (host-memory stand-ins)', function () {
  it('ParameterSet, DataParallel (none, bf16, int8), AdamW, SGD and checkpoints on a device give the host bits', function () {
    this.timeout(120000);
    const { out, stderr } = runOnStandIns(this, 'training-device.js');
    for (const compress of ['none', 'bf16', 'int8']) {
      assert.deepEqual(out[compress], { same: true, moved: true, maxDiff: 0 }, `${compress}: ${JSON.stringify(out[compress])}`);
    }
    assert.deepEqual(out.checkpoint, { params: true, step: true, state: true }, 'a checkpoint saved from device memory loads into host memory with the same bits');
    // Every device buffer the layer allocated (parameters, gradients, state, hook scratch) was freed.
    assert.match(stderr, /fake-cuda: 0 live allocations\n/);
  });
});
