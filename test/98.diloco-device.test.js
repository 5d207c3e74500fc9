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
  const host = (b) => (b instanceof c.DeviceBuffer ? b.copyTo(new Float32Array(b.length)) : b);
  const out = {};
  const modes = {
    streaming: { syncEvery: 4, fragments: 2, fragmentSyncDelay: 1, fragmentUpdateAlpha: 0.5 },
    eager: { syncEvery: 4, mode: 'eager', fragmentSyncDelay: 2 },
    delayed: { syncEvery: 4, mode: 'delayed' },
  };
  const run = async (device, opts, from, to, dir, save) => {
    const set = new t.ParameterSet(specs, device ? { device: 0 } : {});
    if (device) set.data.copyFrom(values(set.length, 0)); else set.data.set(values(set.length, 0));
    const inner = new t.SGD(set, { lr: 0.05, momentum: 0.5 });
    const diloco = await t.DiLoCo.create(comm, set, { innerOptimizer: inner, ...opts });
    if (from > 0) await t.loadDiLoCoCheckpoint(dir, { diloco });
    for (let s = from + 1; s <= to; s++) {
      const g = values(set.length, s);
      const p = host(set.data);
      for (let i = 0; i < g.length; i++) g[i] = p[i] - g[i];
      if (device) set.grad.copyFrom(g); else set.grad.set(g);
      inner.step();
      await diloco.step();
      if (save && s === save) await t.saveDiLoCoCheckpoint(dir, { diloco, step: s });
    }
    const r = { local: bits(host(set.data)), global: bits(host(diloco.globalParams)) };
    diloco.free();
    inner.free();
    set.free();
    return r;
  };
  for (const [name, opts] of Object.entries(modes)) {
    for (const quantize of [false, 'int8']) {
      const o = { ...opts, quantize };
      const dir = ${JSON.stringify('__TMP__')} + '/' + name + '-' + quantize;
      const h = await run(false, o, 0, 16);
      const d = await run(true, o, 0, 16, dir, 9);
      const resumed = await run(false, o, 9, 16, dir);
      out[name + ' ' + quantize] = { local: d.local === h.local, global: d.global === h.global, resumedOnHost: resumed.local === h.local && resumed.global === h.global, moved: h.global !== bits(values(h.global.length / 8, 0)) };
    }
  }
  await comm.destroy();
  console.log('RESULT ' + JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });`;

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
    const script = SCRIPT.replace('__TMP__', path.join(tmp, 'ckpt'));
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 100000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, r.stdout + r.stderr);
    const out = JSON.parse(line.slice(7));
    for (const mode of ['streaming', 'eager', 'delayed']) {
      for (const q of ['false', 'int8']) {
        assert.deepEqual(out[`${mode} ${q}`], { local: true, global: true, resumedOnHost: true, moved: true }, `${mode}, quantize ${q}`);
      }
    }
    // Every device buffer DiLoCo allocated (θ_global, momentum, Δ, spare, residuals) was freed.
    assert.match(r.stderr, /fake-cuda: 0 live allocations\n/);
  });
});
