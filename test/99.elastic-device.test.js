'use strict';
// Elastic DiLoCo and elastic DataParallel on DeviceBuffers against the same runs on host arrays,
// on the host-memory stand-ins of the CUDA runtime, NCCL and the kernels (test/fixtures/fake-gpu):
// one worker (the stand-in NCCL joins one-rank communicators only) that loses its generation
// mid-run and recovers alone. The bits must be the host's, and, in float32, those of a run that
// lost nothing.

const assert = require('node:assert/strict');
const { runOnStandIns } = require('./helpers/device-worker');

describe('99 elastic training on DeviceBuffers (host-memory stand-ins)', function () {
  it('a lost generation, recovered alone: the host bits, and in float32 those of a run that lost nothing', function () {
    this.timeout(120000);
    const { out, stderr } = runOnStandIns(this, 'elastic-device.js');
    assert.deepEqual(out['diloco false'], { global: true, local: true, asIfNothingLost: true, generations: [2, 2, 1], outer: [4, 4], moved: true, maxDiff: 0 });
    assert.deepEqual(out['diloco int8'], { global: true, local: true, asIfNothingLost: null, generations: [2, 2, 1], outer: [4, 4], moved: true, maxDiff: 0 });
    assert.deepEqual(out.ddp, { params: true, asIfNothingLost: true, generations: [2, 2, 1], dropped: [1, 1, 0], moved: true, maxDiff: 0 });
    assert.match(stderr, /fake-cuda: 0 live allocations\n/);
  });
});
