'use strict';
// One process of test/95.zero-device.test.js: ZeRO on DeviceBuffers (the host-memory stand-ins
// of CUDA, NCCL and the kernels) against the same run on host arrays, one rank (the stand-in
// NCCL joins one-rank communicators only). Prints one RESULT line.

const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { init } = require('../../dist');
const T = require('../../dist/training');
const M = require('./zero-model');
const { bits, toHost: host, maxDiff } = require('../helpers/device-runs');

const write = (b, values) => (b instanceof Float32Array ? b.set(values) : b.copyFrom(values));

async function run(comm, options, device) {
  const set = new T.ParameterSet(M.SPECS, device ? { device: 0 } : undefined);
  const init0 = new T.ParameterSet(M.SPECS);
  M.initialize(init0);
  write(set.data, init0.data);
  const zero = await T.Zero.create(comm, set, { optimizer: (s) => new T.AdamW(s, M.OPT), ...options });
  const grad = (name, step) => {
    const p = host(zero.view(name));
    const g = new Float32Array(p.length);
    M.fill(g, p, name, step, 0);
    write(zero.gradView(name), g);
    zero.gradReady(name);
  };
  for (let step = 1; step <= 3; step++) {
    if (zero.stage === 3) {
      for (const layer of M.LAYERS) await zero.withGathered(layer, () => {});
      for (let l = M.LAYERS.length - 1; l >= 0; l--) await zero.withGathered(M.LAYERS[l], () => [...M.LAYERS[l]].reverse().forEach((n) => grad(n, step)));
    } else {
      zero.zeroGrad();
      for (let j = M.SPECS.length - 1; j >= 0; j--) grad(M.SPECS[j].name, step);
    }
    await zero.step();
  }
  const full = new T.ParameterSet(M.SPECS, device ? { device: 0 } : undefined);
  await zero.gatherAll(full.data);
  const out = host(full.data).slice();
  return { zero, set, full, out };
}

(async () => {
  const comm = await init({ rank: 0, worldSize: 1, masterPort: 0 });
  const configs = {
    stage1: { stage: 1 },
    stage2: { stage: 2, reduceBucketSize: 200, allgatherBucketSize: 100 },
    stage3: { stage: 3, layers: M.LAYERS, paramPersistenceThreshold: 10, prefetchBucketSize: 1 },
    zeroPP: { stage: 3, layers: M.LAYERS, paramPersistenceThreshold: 10, quantizedWeights: true, quantizedGradients: true, blockSize: 32 },
  };
  const result = {};
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-device-'));
  for (const [name, options] of Object.entries(configs)) {
    const h = await run(comm, options, false);
    const d = await run(comm, options, true);
    const start = new T.ParameterSet(M.SPECS);
    M.initialize(start);
    result[name] = { same: bits(h.out) === bits(d.out), moved: bits(h.out) !== bits(start.data), maxDiff: maxDiff(d.out, h.out) };
    if (name === 'stage3') {
      // A checkpoint written from device memory loads into host memory with the device's bits
      // (on the stand-ins, the host run's as well: `same` above).
      await T.saveZeroCheckpoint(d.zero, path.join(tmp, 'ck'), { step: 3 });
      const back = await T.Zero.create(comm, new T.ParameterSet(M.SPECS), { stage: 1, optimizer: (s) => new T.AdamW(s, M.OPT) });
      await T.loadZeroCheckpoint(back, path.join(tmp, 'ck'));
      result.checkpoint = { params: bits(back.params.data.subarray(0, back.params.size)) === bits(d.out.subarray(0, back.params.size)) };
      await back.free();
    }
    await d.zero.free();
    d.set.free();
    d.full.free();
    await h.zero.free();
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  await comm.destroy();
  console.log('RESULT ' + JSON.stringify(result));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
