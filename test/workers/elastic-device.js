'use strict';
// One process of test/99.elastic-device.test.js and test/gpu/50.training.test.js: elastic
// DiLoCo and elastic DataParallel on DeviceBuffers against the same runs on host arrays, one
// worker whose generation is lost mid-run (its communicator aborted before an outer step or a
// step), which it recovers from by forming the next generation alone, redoing the outer step or
// retrying the step. With one worker the recovered run must also equal a run that lost nothing,
// bit for bit. The store is hosted here, standing for the launcher's. Prints one RESULT line.

const { StoreServer } = require('../../dist/store/server');
const t = require('../../dist/training');
const { SPECS: specs, values, bits, toHost: host, maxDiff } = require('../helpers/device-runs');

let runs = 0;

/** A fresh elastic job of one worker (a run id of its own, so the store's keys do not meet). */
function job() {
  process.env.COLLECTIVES_RUN_ID = `elastic-device-${++runs}`;
  return t.Elastic.join({ log: false, timeoutMs: 20000 });
}

function gradients(set, s) {
  const g = values(set.length, s);
  const p = host(set.data);
  for (let i = 0; i < g.length; i++) g[i] = p[i] - g[i];
  if (set.data instanceof Float32Array) set.grad.set(g);
  else set.grad.copyFrom(g);
}

function parameters(device) {
  const set = new t.ParameterSet(specs, device ? { device: 0 } : {});
  if (device) set.data.copyFrom(values(set.length, 0));
  else set.data.set(values(set.length, 0));
  return set;
}

async function diloco(device, quantize, lose) {
  const elastic = await job();
  const set = parameters(device);
  const inner = new t.SGD(set, { lr: 0.05, momentum: 0.5 });
  const ed = await t.ElasticDiLoCo.create(elastic, set, { innerOptimizer: inner, syncEvery: 4, quantize });
  for (let s = 1; s <= 16; s++) {
    gradients(set, s);
    inner.step();
    if (lose && s === 8) elastic.comm.abort('the generation is lost on purpose');
    await ed.step();
  }
  const r = { global: host(ed.globalParams).slice(), local: host(set.data).slice(), generation: elastic.generation, outer: ed.outerSteps };
  await ed.free();
  inner.free();
  set.free();
  await elastic.close();
  return r;
}

async function ddp(device, lose) {
  const elastic = await job();
  const set = parameters(device);
  const edp = await t.ElasticDataParallel.create(elastic, set, { optimizer: (p) => new t.SGD(p, { lr: 0.05, momentum: 0.5 }) });
  let dropped = 0;
  while (edp.steps < 10) {
    gradients(set, edp.steps + 1);
    if (lose && edp.steps === 4 && dropped === 0) elastic.comm.abort('the generation is lost on purpose');
    if (!(await edp.step())) dropped++;
  }
  const r = { params: host(set.data).slice(), generation: elastic.generation, dropped };
  await edp.free();
  set.free();
  await elastic.close();
  return r;
}

(async () => {
  const server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: 'elastic-device' });
  Object.assign(process.env, {
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(server.port),
    COLLECTIVES_TOKEN: 'elastic-device',
    COLLECTIVES_STORE_HOSTED: '1',
    RANK: '0',
    WORLD_SIZE: '1',
    COLLECTIVES_ELASTIC_ID: '0.0',
  });
  const out = {};
  for (const quantize of [false, 'int8']) {
    const h = await diloco(false, quantize, true);
    const d = await diloco(true, quantize, true);
    const plain = await diloco(false, quantize, false);
    out[`diloco ${quantize}`] = {
      global: bits(d.global) === bits(h.global),
      local: bits(d.local) === bits(h.local),
      asIfNothingLost: quantize === false ? bits(h.global) === bits(plain.global) : null,
      generations: [h.generation, d.generation, plain.generation],
      outer: [h.outer, d.outer],
      moved: bits(h.global) !== bits(values(h.global.length, 0)),
      maxDiff: Math.max(maxDiff(d.global, h.global), maxDiff(d.local, h.local)),
    };
  }
  const h = await ddp(false, true);
  const d = await ddp(true, true);
  const plain = await ddp(false, false);
  out.ddp = {
    params: bits(d.params) === bits(h.params),
    asIfNothingLost: bits(h.params) === bits(plain.params),
    generations: [h.generation, d.generation, plain.generation],
    dropped: [h.dropped, d.dropped, plain.dropped],
    moved: bits(h.params) !== bits(values(h.params.length, 0)),
    maxDiff: maxDiff(d.params, h.params),
  };
  await server.close();
  console.log('RESULT ' + JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
