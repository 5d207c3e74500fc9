'use strict';
// ZeRO on DeviceBuffers, run on the host-memory stand-ins of the CUDA runtime, NCCL and the
// kernels (test/fixtures/fake-gpu): stages 1–3 and ZeRO++'s quantized weights and gradients
// must give the host's bits, a checkpoint saved from device memory must load into host memory,
// and every device buffer must be freed. One rank: the stand-in NCCL joins one-rank
// communicators only, so the multi-rank device paths have not run here (nor on a GPU).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fakeGpuEnv } = require('./helpers/fake-gpu');
const { runDeviceWorker } = require('./helpers/device-worker');

describe('95 ZeRO on DeviceBuffers (host-memory stand-ins)', function () {
  let tmp;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-device-fakes-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('stages 1–3 and ZeRO++ on a device give the host bits; checkpoints cross; nothing leaks', function () {
    this.timeout(120000);
    const env = fakeGpuEnv(path.join(tmp, 'fakes'));
    if (env === null) this.skip();
    const { out, stderr } = runDeviceWorker('zero-device.js', path.join(tmp, 'ckpt'), env);
    for (const k of ['stage1', 'stage2', 'stage3', 'zeroPP']) assert.deepEqual(out[k], { same: true, moved: true, maxDiff: 0 }, `${k}: ${JSON.stringify(out[k])}`);
    assert.deepEqual(out.checkpoint, { params: true });
    assert.match(stderr, /fake-cuda: 0 live allocations\n/);
  });
});
