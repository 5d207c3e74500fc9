'use strict';
// One process of test/98.diloco-device.test.js and test/gpu/50.training.test.js: DiLoCo on
// DeviceBuffers against the same run on host arrays, one rank, every mode with float32 and int8
// rounds, and a device checkpoint resumed on host. argv[2]: a directory for the checkpoints.
// Prints one RESULT line.

const c = require('../../dist');
const t = require('../../dist/training');
const { SPECS: specs, values, bits, toHost: host, maxDiff } = require('../helpers/device-runs');

(async () => {
  const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
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
    const local = host(set.data).slice();
    const global = host(diloco.globalParams).slice();
    const r = { local: bits(local), global: bits(global), values: { local, global } };
    await diloco.free();
    inner.free();
    set.free();
    return r;
  };
  for (const [name, opts] of Object.entries(modes)) {
    for (const quantize of [false, 'int8']) {
      const o = { ...opts, quantize };
      const dir = process.argv[2] + '/' + name + '-' + quantize;
      const h = await run(false, o, 0, 16);
      const d = await run(true, o, 0, 16, dir, 9);
      const resumed = await run(false, o, 9, 16, dir);
      out[name + ' ' + quantize] = { local: d.local === h.local, global: d.global === h.global, resumedOnHost: resumed.local === h.local && resumed.global === h.global, moved: h.global !== bits(values(h.global.length / 8, 0)), maxDiff: Math.max(maxDiff(d.values.local, h.values.local), maxDiff(d.values.global, h.values.global)) };
    }
  }
  await comm.destroy();
  console.log('RESULT ' + JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });