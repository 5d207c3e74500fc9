'use strict';
// ZeRO on DeviceBuffers, run on the host-memory stand-ins of the CUDA runtime, NCCL and the
// kernels (test/fixtures/fake-gpu): stages 1–3 and ZeRO++'s quantized weights and gradients
// must give the host's bits, a checkpoint saved from device memory must load into host memory,
// and every device buffer must be freed. One rank: the stand-in NCCL joins one-rank
// communicators only, so the multi-rank device paths have not run here (nor on a GPU).

const assert = require('node:assert/strict');
const { runOnStandIns } = require('./helpers/device-worker');

describe('95 ZeRO on DeviceBuffers (host-memory stand-ins)', function () {
  it('stages 1–3 and ZeRO++ on a device give the host bits; checkpoints cross; nothing leaks', function () {
    this.timeout(120000);
    const { out, stderr } = runOnStandIns(this, 'zero-device.js');
    for (const k of ['stage1', 'stage2', 'stage3', 'zeroPP']) assert.deepEqual(out[k], { same: true, moved: true, maxDiff: 0 }, `${k}: ${JSON.stringify(out[k])}`);
    assert.deepEqual(out.checkpoint, { params: true });
    assert.match(stderr, /fake-cuda: 0 live allocations\n/);
  });
});
