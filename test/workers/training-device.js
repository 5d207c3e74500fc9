'use strict';
// One process of test/97.training-device.test.js and test/gpu/50.training.test.js: the training
// layer on DeviceBuffers against the same steps on host arrays, one rank. argv[2]: a directory for
// the checkpoint. Prints one RESULT line: per case, whether the device's bits are the host's, the
// largest difference, and whether training moved the weights at all.

const c = require('../../dist');
const t = require('../../dist/training');
const { SPECS: specs, values, bits, maxDiff } = require('../helpers/device-runs');

(async () => {
  const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
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
    const onDevice = dev.data.copyTo(new Float32Array(dev.length));
    out[compress] = { same: bits(onDevice) === bits(host.data), moved: bits(host.data) !== bits(values(host.length, 0)), maxDiff: maxDiff(onDevice, host.data) };
    if (compress === 'none') {
      const dir = process.argv[2];
      t.saveCheckpoint(dir, { params: dev, optimizer: optDev, step: 3 });
      const back = new t.ParameterSet(specs, { padMultiple: 8 });
      const backOpt = new t.AdamW(back);
      t.loadCheckpoint(dir, { params: back, optimizer: backOpt });
      // Against what the device held (on the stand-ins, the host run's bits as well).
      const sh = optDev.state();
      const sb = backOpt.state();
      out.checkpoint = { params: bits(back.data.subarray(0, back.size)) === bits(onDevice.subarray(0, host.size)), step: sb.step === sh.step, state: Object.keys(sh.tensors).every((k) => bits(sb.tensors[k]) === bits(sh.tensors[k])) };
    }
    dpDev.free();
    optDev.free();
    dev.free();
  }
  await comm.destroy();
  console.log('RESULT ' + JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });