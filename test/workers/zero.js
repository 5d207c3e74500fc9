'use strict';
// One rank of test/95.zero.test.js. Mode (argv[2]):
//   equivalence  ZeRO stages 1–3 against DataParallel + AdamW (bit for bit: see zero-model.js),
//                memory from the buffers' sizes, wire bytes against the formulas, stage 3's
//                prefetch observed, bad options refused
//   zeropp       4 ranks as 2 nodes × 2: hpZ alone bit for bit, qwZ and qgZ within their
//                formats' bounds, cross-node bytes of ZeRO++ against ZeRO-3 counted from the
//                ranks' node ids
//   save DIR     stage 2, 20 steps, a sharded checkpoint
//   load DIR STAGE  resharded into this world size and stage: the saved parameters and
//                optimizer state, 5 more steps equal to a one-process reference, consolidation
//   refuse DIR…  each damaged checkpoint is refused on every rank, naming the file

const fs = require('node:fs');
const path = require('node:path');
const { init } = require('../../dist');
const T = require('../../dist/training');
const { Checker, run } = require('../helpers/worker');
const M = require('./zero-model');

const { ParameterSet, DataParallel, AdamW, Zero } = T;
const STEPS = 20;

const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
const newSet = (n) => {
  const s = new ParameterSet(M.SPECS, { padMultiple: ParameterSet.padMultiple(n) });
  M.initialize(s);
  return s;
};

/** The backward pass of the synthetic model on a ZeRO instance, any stage. */
async function zeroStep(zero, step, rank, shuffled = false) {
  if (zero.stage === 3 && shuffled) {
    // Every layer's gradients written first, then marked ready in an order of this rank's own:
    // the reduce-scatters must still go out in one order on every rank.
    for (const layer of M.LAYERS) await zero.withGathered(layer, () => layer.forEach((n) => M.fill(zero.gradView(n), zero.view(n), n, step, rank)));
    const names = M.LAYERS.flat();
    const order = rank % 2 === 1 ? names : [...names].reverse();
    for (const n of order) zero.gradReady(n);
  } else if (zero.stage === 3) {
    for (const layer of M.LAYERS) await zero.withGathered(layer, () => zero.view(layer[0])[0]);
    for (let l = M.LAYERS.length - 1; l >= 0; l--) {
      const layer = M.LAYERS[l];
      await zero.withGathered(layer, () => {
        for (let j = layer.length - 1; j >= 0; j--) {
          M.fill(zero.gradView(layer[j]), zero.view(layer[j]), layer[j], step, rank);
          zero.gradReady(layer[j]);
        }
      });
    }
  } else {
    zero.zeroGrad();
    for (let j = M.SPECS.length - 1; j >= 0; j--) {
      const name = M.SPECS[j].name;
      M.fill(zero.gradView(name), zero.view(name), name, step, rank);
      zero.gradReady(name);
    }
  }
  await zero.step();
}

async function ddpRun(comm, steps) {
  const set = newSet(comm.size);
  const dp = await DataParallel.create(comm, set);
  const opt = new AdamW(set, M.OPT);
  for (let step = 1; step <= steps; step++) {
    set.zeroGrad();
    for (const t of set.tensors) M.fill(set.gradView(t.name), set.view(t.name), t.name, step, comm.rank);
    dp.gradsReady();
    await dp.synchronizeAndStep(opt);
  }
  return { set, opt };
}

async function zeroRun(comm, options, steps, shuffled = false) {
  const set = newSet(comm.size);
  const zero = await Zero.create(comm, set, { optimizer: (s) => new AdamW(s, M.OPT), ...options });
  for (let step = 1; step <= steps; step++) await zeroStep(zero, step, comm.rank, shuffled);
  return zero;
}

/** Tensor by tensor, the same bits in two sets of the same layout (ZeRO's gathered copy and DDP's). */
function sameTensors(check, what, full, set) {
  for (const t of set.tensors) {
    check.ok(`${what}: ${t.name}`, bits(full.subarray(t.offset, t.offset + t.size)) === bits(set.data.subarray(t.offset, t.offset + t.size)), 'differs');
  }
}

async function gathered(zero) {
  const full = new Float32Array(zero.params.length);
  await zero.gatherAll(full);
  return full;
}

const STAGES = [
  ['stage 1', { stage: 1 }],
  ['stage 2', { stage: 2, reduceBucketSize: 200, allgatherBucketSize: 100 }],
  ['stage 2 without overlapComm', { stage: 2, overlapComm: false, reduceBucketSize: 300 }],
  ['stage 3', { stage: 3, layers: M.LAYERS, paramPersistenceThreshold: 10, prefetchBucketSize: 1 }],
  ['stage 3, gradients ready in another order on odd ranks', { stage: 3, layers: M.LAYERS, paramPersistenceThreshold: 10 }, true],
];

async function equivalence(comm, check) {
  const { rank, size } = comm;
  const ddp = await ddpRun(comm, STEPS);
  const ddpState = Object.values(ddp.opt.state().tensors).reduce((s, t) => s + t.byteLength, 0);
  for (const [name, options, shuffled] of STAGES) {
    check.begin(`${name} equals DataParallel + AdamW bit for bit after ${STEPS} steps`);
    const zero = await zeroRun(comm, options, STEPS, shuffled);
    sameTensors(check, 'parameters', await gathered(zero), ddp.set);
    check.equal('optimizer steps', zero.optimizer.stepCount, STEPS);
    if (options.stage === 2) check.ok('several buckets, some spanning ranks', zero.options.reduceBucketSize < zero.shard.length, `shard ${zero.shard.length}`);
    if (shuffled) {
      await zero.free();
      continue;
    }
    check.begin(`${name}: per-rank optimizer state is 1/N of DataParallel's (+ padding)`);
    const mem = zero.memory();
    const stateBytes = Object.values(zero.optimizer.state().tensors).reduce((s, t) => s + t.byteLength, 0);
    check.equal('memory() counts the state buffers', mem.optimizerState, stateBytes);
    const padded = zero.partition.units.reduce((s, u) => s + u.padded, 0);
    // DDP's state covers params.length (padded to N); ZeRO's covers its padded units / N.
    const ddpPerElement = ddpState / ddp.set.length;
    check.equal('state bytes × N = DataParallel\'s per element × padded elements', stateBytes * size, ddpPerElement * padded);
    check.ok('padding under one block of N per unit', padded - zero.params.size < zero.partition.units.length * size, `${padded - zero.params.size} padding elements`);
    check.equal('padding queryable per rank', zero.partition.padding(rank), zero.shard.length - zero.partition.pieces(rank).reduce((s, p) => s + p.tensorEnd - p.tensorBegin, 0));
    if (options.stage === 3) {
      check.begin('stage 3: resident parameter bytes outside gather windows are 1/N (+ persistent layers)');
      const persistent = zero.partition.units.filter((u) => u.persistent);
      check.ok('one persistent layer', persistent.length === 1 && persistent[0].names[0] === 'norm.scale', JSON.stringify(persistent.map((u) => u.names)));
      check.equal('master = 1/N of the padded parameters', mem.master * size, padded * 4);
      check.equal('persistent layers whole', mem.parameters, persistent.reduce((s, u) => s + u.padded * 4, 0));
      check.equal('no layer gathered between steps', mem.gathered, 0);
      check.equal('no layer gradient held between steps', mem.layerGradients, 0);
      await zero.gather(['wide.weight']);
      const wide = zero.partition.unitOf('wide.weight');
      check.equal('inside a window: the layer (and the prefetched next one) on top', zero.memory().gathered, (wide.padded + zero.partition.unitOf('head.weight').padded) * 4);
      zero.release(['wide.bias']);
      await zero.step().catch(() => {});
    }
    await zero.free();
  }
  check.begin('ownership is queryable and covers every element once');
  {
    const set = newSet(size);
    const zero = await Zero.create(comm, set, { stage: 1, optimizer: (s) => new AdamW(s) });
    const range = zero.partition.shardRange(rank);
    check.equal('contiguous 1/N range', range.end - range.begin, set.length / size);
    for (const t of set.tensors) {
      const own = zero.partition.ownership(t.name);
      let at = 0;
      for (const p of own) {
        check.equal(`${t.name} piece starts where the last ended`, p.tensorBegin, at);
        at = p.tensorEnd;
      }
      check.equal(`${t.name} covered`, at, t.size);
    }
    await zero.free();
  }
  await wireBytes(comm, check);
  await prefetch(comm, check);
  await badOptions(comm, check);
}

/** Bytes this rank sends in one step, from comm.stats(), against the formulas. */
async function wireBytes(comm, check) {
  const { size } = comm;
  for (const [name, options, factor] of [['stage 1', { stage: 1 }, 2], ['stage 2', { stage: 2, reduceBucketSize: 200 }, 2], ['stage 3', { stage: 3, paramPersistenceThreshold: 0 }, 3]]) {
    check.begin(`${name}: wire bytes per step = ${factor}× parameters' bytes × (N−1)/N`);
    const zero = await zeroRun(comm, options, 1);
    comm.resetStats();
    await zeroStep(zero, 2, comm.rank);
    const stats = comm.stats();
    const padded = zero.partition.units.reduce((s, u) => s + u.padded, 0);
    const expected = (factor * padded * 4 * (size - 1)) / size;
    check.equal('bytes sent', stats.total.bytesSent, expected);
    // stats() counts a reduce as the root receiving its buffer once (nccl-tests' bus model), so
    // stage 2's reduce-to-owner receives Ψ/N where a reduce-scatter receives (N−1)/N·Ψ.
    const received = options.stage === 2 ? (padded * 4 * (size - 1)) / size + (padded * 4) / size : expected;
    check.equal('bytes received', stats.total.bytesReceived, received);
    check.attach('ops', Object.fromEntries(Object.entries(stats.operations).map(([k, v]) => [k, v.bytesSent])));
    await zero.free();
  }
}

async function prefetch(comm, check) {
  check.begin("stage 3 prefetch: the next layer's gather is in flight while the current layer computes");
  const set = newSet(comm.size);
  const zero = await Zero.create(comm, set, { stage: 3, layers: M.LAYERS, paramPersistenceThreshold: 0, prefetchBucketSize: 1, optimizer: (s) => new AdamW(s) });
  comm.resetStats();
  const seen = [];
  for (let l = 0; l < M.LAYERS.length; l++) {
    await zero.gather(M.LAYERS[l]);
    // "Computing" layer l: the next layer's all-gather has been issued and not yet asked for.
    const next = M.LAYERS[l + 1];
    seen.push(next === undefined ? 'none' : zero.gatherStatus(next[0]));
    check.equal(`forward layer ${l}: all-gathers issued`, comm.stats().operations.allGather.calls, Math.min(l + 2, M.LAYERS.length));
    zero.release(M.LAYERS[l]);
  }
  check.equal('forward: the next layer prefetching at every layer', seen.join(), [...Array(M.LAYERS.length - 1).fill('prefetching'), 'none'].join());
  const back = [];
  for (let l = M.LAYERS.length - 1; l >= 0; l--) {
    await zero.gather(M.LAYERS[l]);
    const prev = M.LAYERS[l - 1];
    back.push(prev === undefined ? 'none' : zero.gatherStatus(prev[0]));
    for (const n of M.LAYERS[l]) {
      zero.gradView(n).fill(0);
      zero.gradReady(n);
    }
    zero.release(M.LAYERS[l]);
  }
  check.equal('backward: the previous layer prefetching at every layer', back.join(), [...Array(M.LAYERS.length - 1).fill('prefetching'), 'none'].join());
  check.equal('one forward and one backward gather per layer', comm.stats().operations.allGather.calls, 2 * M.LAYERS.length);
  check.equal('counters', zero.gatherCounters.prefetched, 2 * (M.LAYERS.length - 1));
  await zero.step();
  await zero.free();
}

async function badOptions(comm, check) {
  check.begin('bad options are refused naming the option');
  const set = newSet(comm.size);
  const opt = (s) => new AdamW(s);
  const refused = async (what, options, code, pattern) => {
    try {
      await Zero.create(comm, set, options);
      check.fail(what, 'accepted');
    } catch (e) {
      check.ok(what, e.code === code && pattern.test(e.message), `${e.code}: ${e.message}`);
    }
  };
  await refused('stage 4', { stage: 4, optimizer: opt }, 'INVALID_ARGUMENT', /options\.stage: expected 1, 2 or 3, got 4/);
  await refused("a DeepSpeed name, pointed to ours", { stage: 1, optimizer: opt, reduce_bucket_size: 5 }, 'INVALID_ARGUMENT', /options\.reduce_bucket_size: expected our name reduceBucketSize/);
  await refused('an unknown key', { stage: 1, optimizer: opt, bucketSize: 5 }, 'INVALID_ARGUMENT', /options\.bucketSize: expected one of the options/);
  await refused('ZeRO++ below stage 3', { stage: 2, optimizer: opt, quantizedWeights: true }, 'INVALID_ARGUMENT', /options\.quantizedWeights: expected stage 3/);
  await refused('no optimizer', { stage: 1 }, 'INVALID_ARGUMENT', /options\.optimizer/);
  await refused('layers out of order', { stage: 3, optimizer: opt, layers: [['mid.weight', 'mid.bias'], ...M.LAYERS.filter((l) => l[0] !== 'mid.weight')] }, 'INVALID_ARGUMENT', /options\.layers\[0\]/);
  await refused('hpZ not dividing the world', { stage: 3, optimizer: opt, hierarchicalPartition: comm.size + 1 }, 'INVALID_ARGUMENT', /options\.hierarchicalPartition/);
  for (const [name, call] of [['saveZeroCheckpoint', () => T.saveZeroCheckpoint(null, '/tmp/never', { step: 1 })], ['loadZeroCheckpoint', () => T.loadZeroCheckpoint({}, '/tmp/never')]]) {
    try {
      await call();
      check.fail(`${name} without a Zero`, 'accepted');
    } catch (e) {
      check.ok(`${name} without a Zero names the argument`, e.code === 'INVALID_ARGUMENT' && /^zero: expected a Zero/.test(e.message), `${e.code}: ${e.message}`);
    }
  }
  const unpadded = new ParameterSet([{ name: 'w', shape: [comm.size * 3 + 1] }]);
  try {
    await Zero.create(comm, unpadded, { stage: 1, optimizer: opt });
    check.fail('unpadded set', 'accepted');
  } catch (e) {
    check.ok('a set not padded to N', e.code === 'INVALID_ARGUMENT' && /padMultiple/.test(e.message), e.message);
  }
  const z3 = await Zero.create(comm, set, { stage: 3, optimizer: opt, paramPersistenceThreshold: 0 });
  try {
    z3.view('mid.weight');
    check.fail('view outside a window', 'returned');
  } catch (e) {
    check.ok('view outside a gather window', e.code === 'INVALID_STATE' && /not gathered/.test(e.message), e.message);
  }
  try {
    await z3.gather(['nope']);
    check.fail('unknown tensor', 'gathered');
  } catch (e) {
    check.ok('an unknown tensor named', e.code === 'INVALID_ARGUMENT' && /"nope"/.test(e.message), e.message);
  }
  await z3.free();
  try {
    await z3.step();
    check.fail('step() after free()', 'accepted');
  } catch (e) {
    check.ok('step() after free() is INVALID_STATE', e.code === 'INVALID_STATE' && /after free\(\)/.test(e.message), `${e.code}: ${e.message}`);
  }
}

module.exports = { zeroStep, zeroRun, ddpRun, gathered, sameTensors, newSet, bits, STEPS };

if (require.main === module) {
  run(async () => {
    const comm = await init();
    const check = new Checker(comm.rank);
    const mode = process.argv[2];
    if (mode === 'equivalence') await equivalence(comm, check);
    else await require('./zero-modes')[mode](comm, check, process.argv.slice(3));
    check.report();
    await comm.destroy();
  });
}
