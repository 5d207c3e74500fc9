'use strict';
// The training layer on DeviceBuffers, against the same steps on host arrays: ParameterSet on a
// device, DataParallel's hooks (plain, bf16, int8), AdamW and SGD, and checkpoints, run on the
// host-memory stand-ins of the CUDA runtime, NCCL and the kernels (test/fixtures/fake-gpu), which
// run the device code paths with the host's arithmetic: the bits must be the host's. One rank
// (the stand-in NCCL joins one-rank communicators only).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { fakeGpuEnv } = require('./helpers/fake-gpu');

const DIST = path.join(__dirname, '..', 'dist');

const SCRIPT = `
const c = require(${JSON.stringify(path.join(DIST, 'index.js'))});
const t = require(${JSON.stringify(path.join(DIST, 'training', 'index.js'))});
(async () => {
  const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
  const specs = [{ name: 'w', shape: [33, 7] }, { name: 'b', shape: [5] }];
  const values = (n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * (1 + (i % 5)));
  const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
  const out = {};
  for (const [compress, makeOpt] of [['none', (s) => new t.AdamW(s)], ['bf16', (s) => new t.SGD(s, { lr: 0.1, momentum: 0.9, nesterov: true })], ['int8', (s) => new t.AdamW(s, { weightDecay: 0.1 })]]) {
    const host = new t.ParameterSet(specs, { padMultiple: 8 });
    const dev = new t.ParameterSet(specs, { device: 0, padMultiple: 8 });
    host.data.set(values(host.length, 0));
    dev.data.copyFrom(values(dev.length, 0));
    const dpHost = await t.DataParallel.create(comm, host, { compress });
    const dpDev = await t.DataParallel.create(comm, dev, { compress });
    const optHost = makeOpt(host);
    const optDev = makeOpt(dev);
    for (let step = 1; step <= 3; step++) {
      const g = values(host.length, step);
      host.grad.set(g);
      dev.grad.copyFrom(g);
      dpHost.gradsReady();
      await dpHost.synchronizeAndStep(optHost);
      for (let i = specs.length - 1; i >= 0; i--) dpDev.gradReady(specs[i].name);
      await dpDev.synchronizeAndStep(optDev);
    }
    out[compress] = { same: bits(dev.data.copyTo(new Float32Array(dev.length))) === bits(host.data), moved: bits(host.data) !== bits(values(host.length, 0)) };
    if (compress === 'none') {
      const dir = ${JSON.stringify('__TMP__')};
      t.saveCheckpoint(dir, { params: dev, optimizer: optDev, step: 3 });
      const back = new t.ParameterSet(specs, { padMultiple: 8 });
      const backOpt = new t.AdamW(back);
      t.loadCheckpoint(dir, { params: back, optimizer: backOpt });
      const sh = optHost.state();
      const sb = backOpt.state();
      out.checkpoint = { params: bits(back.data.subarray(0, back.size)) === bits(host.data.subarray(0, host.size)), step: sb.step === sh.step, state: Object.keys(sh.tensors).every((k) => bits(sb.tensors[k]) === bits(sh.tensors[k])) };
    }
    dpDev.free();
    optDev.free();
    dev.free();
  }
  await comm.destroy();
  console.log('RESULT ' + JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });`;

describe('97 the training layer on DeviceBuffers (host-memory stand-ins)', function () {
  let tmp;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-train-device-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('ParameterSet, DataParallel (none, bf16, int8), AdamW, SGD and checkpoints on a device give the host bits', function () {
    this.timeout(120000);
    const env = fakeGpuEnv(path.join(tmp, 'fakes'));
    if (env === null) this.skip();
    const script = SCRIPT.replace('__TMP__', path.join(tmp, 'ckpt'));
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 100000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, r.stdout + r.stderr);
    const out = JSON.parse(line.slice(7));
    for (const compress of ['none', 'bf16', 'int8']) {
      assert.deepEqual(out[compress], { same: true, moved: true }, `${compress}: ${JSON.stringify(out[compress])}`);
    }
    assert.deepEqual(out.checkpoint, { params: true, step: true, state: true }, 'a checkpoint saved from device memory loads into host memory with the same bits');
    // Every device buffer the layer allocated (parameters, gradients, state, hook scratch) was freed.
    assert.match(r.stderr, /fake-cuda: 0 live allocations\n/);
  });
});
