'use strict';
// The multi-node and checkpoint modes of test/workers/zero.js (see its header).

const fs = require('node:fs');
const path = require('node:path');
const T = require('../../dist/training');
const M = require('./zero-model');
const { zeroStep, zeroRun, ddpRun, gathered, sameTensors, newSet, bits, STEPS } = require('./zero');

const { ParameterSet, AdamW, Zero, saveLatestZeroCheckpoint, loadZeroCheckpoint, consolidateZeroCheckpoint, readSafetensors } = T;

// Operations whose bytes the bus model spreads evenly over the other members.
const SYMMETRIC = new Set(['allGather', 'reduceScatter', 'allToAll', 'allGatherQuantized', 'reduceScatterQuantized', 'allToAllQuantized', 'allReduce']);

/** A communicator with its members' world ranks, asked before stats are reset. */
async function withMembers(comm, c) {
  return { comm: c, members: await c.allGatherObject(comm.rank) };
}

/** Bytes this rank sent to ranks of the other node, from each communicator's stats and the members' node ids. */
function crossNodeBytes(groups, nodeOf, me, check) {
  let cross = 0;
  for (const { comm: c, members } of groups) {
    if (members.length < 2) continue;
    const others = members.filter((r) => nodeOf[r] !== nodeOf[me]).length;
    for (const [op, s] of Object.entries(c.stats().operations)) {
      check.ok(`${op} spreads its bytes evenly over the members`, SYMMETRIC.has(op), `unexpected operation ${op}`);
      cross += (s.bytesSent * others) / (members.length - 1);
    }
  }
  return cross;
}

async function groupsOf(comm, zero) {
  const list = [comm, zero.groups.intra, zero.groups.inter, zero.groups.hpz].filter((c, i, a) => c !== null && a.indexOf(c) === i);
  const out = [];
  for (const c of list) out.push(await withMembers(comm, c));
  return out;
}

const resetAll = (groups) => groups.forEach((g) => g.comm.resetStats());

async function zeropp(comm, check) {
  const { rank } = comm;
  const nodeOf = await comm.allGatherObject(Number(process.env.GROUP_RANK));
  const base = { stage: 3, layers: M.LAYERS, paramPersistenceThreshold: 0, blockSize: 32 };

  check.begin('topology: 2 nodes × 2 ranks, from LOCAL_WORLD_SIZE and --nnodes');
  {
    const zero = await Zero.create(comm, newSet(comm.size), { ...base, hierarchicalPartition: 2, optimizer: (s) => new AdamW(s) });
    check.equal('nodes', zero.topology.nodes, 2);
    check.equal('ranks per node', zero.topology.perNode, 2);
    check.equal('node ids as the launchers say', zero.topology.nodeOf.join(), nodeOf.join());
    await zero.free();
  }

  check.begin('hpZ alone equals DataParallel + AdamW bit for bit');
  {
    const ddp = await ddpRun(comm, STEPS);
    const zero = await zeroRun(comm, { ...base, hierarchicalPartition: 2 }, STEPS);
    sameTensors(check, 'parameters', await gathered(zero), ddp.set);
    check.ok('the backward gathers ran inside the node', zero.gatherCounters.secondary === STEPS * M.LAYERS.length, JSON.stringify(zero.gatherCounters));
    await zero.free();
  }

  check.begin("qwZ: gathered layers within int8's bound of the float32 master");
  {
    const zero = await Zero.create(comm, newSet(comm.size), { ...base, quantizedWeights: true, optimizer: (s) => new AdamW(s) });
    const exact = await gathered(zero);
    let worst = 0;
    let changed = 0;
    for (const layer of M.LAYERS) {
      await zero.gather(layer);
      const u = zero.partition.unitOf(layer[0]);
      for (const name of layer) {
        const t = zero.params.get(name);
        const v = zero.view(name);
        for (let i = 0; i < t.size; i++) {
          // The block of the element within the padded layer: blocks of 32 from the layer's start.
          const at = t.offset - u.begin + i;
          const b0 = Math.floor(at / 32) * 32;
          let absmax = 0;
          for (let j = b0; j < Math.min(b0 + 32, u.size); j++) absmax = Math.max(absmax, Math.abs(exact[u.begin + j]));
          const err = Math.abs(v[i] - exact[t.offset + i]);
          worst = Math.max(worst, err / (absmax / 254));
          if (err > 0) changed++;
        }
      }
      zero.release(layer);
    }
    check.ok('every element within absmax/254 of its block', worst <= 1 + 1e-5, `worst ${worst} × the bound`);
    check.ok('the gathers were quantized', changed > 0, 'no element changed');
    check.attach('worstOfBound', worst);
    await zero.free();
  }

  check.begin("qgZ: averaged gradients within int4's bound (two quantizations: node, then across nodes)");
  {
    const zero = await Zero.create(comm, newSet(comm.size), { ...base, quantizedGradients: true, optimizer: (s) => new AdamW(s) });
    check.ok('intra- and inter-node communicators', zero.groups.intra?.size === 2 && zero.groups.inter?.size === 2, 'missing');
    for (let l = M.LAYERS.length - 1; l >= 0; l--) {
      for (const name of M.LAYERS[l]) {
        const g = zero.gradView(name);
        for (let i = 0; i < g.length; i++) g[i] = M.gradient(0, name, i, 1, rank);
        zero.gradReady(name);
      }
    }
    await zero.step();
    let worst = 0;
    let sum = 0;
    let count = 0;
    for (const p of zero.partition.pieces(rank)) {
      for (let i = p.tensorBegin; i < p.tensorEnd; i++) {
        const err = Math.abs(zero.shard.grad[p.shardOffset + i - p.tensorBegin] - M.averaged(0, p.name, i, 1, comm.size));
        worst = Math.max(worst, err);
        sum += err;
        count++;
      }
    }
    // |g| ≤ 1: each int4 rounding is within absmax/14 ≤ 1/14, once per level.
    check.ok('within 1/7 of the exact average', worst <= 1 / 7 + 1e-6, `worst error ${worst}`);
    check.ok('quantized (not exact)', worst > 0, 'exact');
    check.attach('meanError', sum / count);
    check.equal('intra-node quantized reduce-scatters', zero.groups.intra.stats().operations.reduceScatterQuantized?.calls, M.LAYERS.length);
    check.equal('inter-node quantized reduce-scatters', zero.groups.inter.stats().operations.reduceScatterQuantized?.calls, M.LAYERS.length);
    await zero.free();
  }

  check.begin("ZeRO++ cross-node bytes ≤ 1/3 of ZeRO-3's; hpZ's backward gathers move no cross-node byte");
  {
    const z3 = await zeroRun(comm, base, 1);
    const g3 = await groupsOf(comm, z3);
    resetAll(g3);
    await zeroStep(z3, 2, rank);
    const cross3 = crossNodeBytes(g3, nodeOf, rank, check);
    await z3.free();
    const zpp = await zeroRun(comm, { ...base, quantizedWeights: true, hierarchicalPartition: 2, quantizedGradients: true }, 1);
    const gpp = await groupsOf(comm, zpp);
    resetAll(gpp);
    await zeroStep(zpp, 2, rank);
    const crossPP = crossNodeBytes(gpp, nodeOf, rank, check);
    check.ok('ZeRO++ ≤ 1/3 of ZeRO-3 across nodes', crossPP <= cross3 / 3, `ZeRO++ ${crossPP} B, ZeRO-3 ${cross3} B`);
    check.attach('crossNodeBytes', { zero3: cross3, zeroPP: crossPP, ratio: crossPP / cross3 });
    const hpz = gpp.find((g) => g.comm === zpp.groups.hpz);
    check.ok('the hpZ group lies inside this node', hpz.members.every((r) => nodeOf[r] === nodeOf[rank]), `members ${hpz.members}`);
    // With qwZ the backward gathers are int8 too.
    const hg = hpz.comm.stats().operations.allGatherQuantized;
    check.ok('the backward gathers ran in the hpZ group and moved bytes', hg?.calls === M.LAYERS.length && hg.bytesSent > 0, JSON.stringify(hpz.comm.stats().operations));
    check.equal('the world gathered each layer once (forward, int8)', comm.stats().operations.allGatherQuantized?.calls, M.LAYERS.length);
    check.equal('no float32 gather on the world', comm.stats().operations.allGather, undefined);
    await zpp.free();
  }

  check.begin('ZeRO++ (qwZ + hpZ + qgZ) trains close to DataParallel');
  {
    const ddp = await ddpRun(comm, STEPS);
    const zpp = await zeroRun(comm, { ...base, quantizedWeights: true, hierarchicalPartition: 2, quantizedGradients: true }, STEPS);
    const full = await gathered(zpp);
    const start = newSet(comm.size);
    let diff = 0;
    let moved = 0;
    for (let i = 0; i < ddp.set.size; i++) {
      diff += (full[i] - ddp.set.data[i]) ** 2;
      moved += (ddp.set.data[i] - start.data[i]) ** 2;
    }
    const ratio = Math.sqrt(diff / moved);
    check.ok('‖ZeRO++ − DDP‖ under half of ‖DDP − start‖', ratio < 0.5, `ratio ${ratio}`);
    check.attach('relativeDistance', ratio);
    await zpp.free();
  }
}

/** One process, no communicator: AdamW on the average over `n` ranks' gradients. */
function referenceSteps(ref, opt, from, to, n) {
  for (let step = from; step <= to; step++) {
    for (const t of ref.tensors) {
      const p = ref.view(t.name);
      const g = ref.gradView(t.name);
      for (let i = 0; i < t.size; i++) g[i] = M.averaged(p[i], t.name, i, step, n);
    }
    opt.step();
  }
}

async function save(comm, check, [dir]) {
  check.begin('a sharded checkpoint: one safetensors file per rank, one index');
  const zero = await zeroRun(comm, { stage: 2, reduceBucketSize: 200 }, STEPS);
  // A root as part 1's saveLatestCheckpoint writes it: root/step-00000020 and root/latest.
  const written = await saveLatestZeroCheckpoint(zero, dir, { step: STEPS, meta: { savedBy: comm.size } });
  check.equal('the step directory', path.basename(written), 'step-00000020');
  const index = JSON.parse(fs.readFileSync(path.join(written, 'checkpoint.json'), 'utf8'));
  check.equal('files', index.files.length, comm.size);
  check.ok('my shard', fs.existsSync(path.join(written, index.files[comm.rank].file)), 'missing');
  await zero.free();
}

async function load(comm, check, [dir, stage, consolidated]) {
  const { rank, size } = comm;
  const ref = new ParameterSet(M.SPECS);
  M.initialize(ref);
  const refOpt = new AdamW(ref, M.OPT);
  referenceSteps(ref, refOpt, 1, STEPS, 4);
  const atSave = ref.data.slice();
  check.begin(`saved on 4 ranks, loaded on ${size} at stage ${stage}: the same parameters and optimizer state`);
  const zero = await Zero.create(comm, newSet(size), { stage: Number(stage), optimizer: (s) => new AdamW(s, M.OPT), ...(stage === '3' ? { layers: M.LAYERS, paramPersistenceThreshold: 10 } : {}) });
  const loaded = await loadZeroCheckpoint(zero, dir);
  check.equal('step', loaded.step, STEPS);
  check.equal('meta', loaded.meta.savedBy, 4);
  sameTensors(check, 'parameters', await gathered(zero), ref);
  const state = zero.optimizer.state();
  const refState = refOpt.state();
  check.equal('optimizer step count', state.step, STEPS);
  for (const s of Object.keys(refState.tensors)) {
    for (const p of zero.partition.pieces(rank)) {
      const off = ref.get(p.name).offset;
      const n = p.tensorEnd - p.tensorBegin;
      check.ok(`${s} of ${p.name}[${p.tensorBegin}, ${p.tensorEnd})`, bits(state.tensors[s].subarray(p.shardOffset, p.shardOffset + n)) === bits(refState.tensors[s].subarray(off + p.tensorBegin, off + p.tensorEnd)), 'differs');
    }
  }
  check.begin(`training continues on ${size} ranks: 5 steps equal the one-process reference bit for bit`);
  for (let step = STEPS + 1; step <= STEPS + 5; step++) await zeroStep(zero, step, rank);
  referenceSteps(ref, refOpt, STEPS + 1, STEPS + 5, size);
  sameTensors(check, 'parameters', await gathered(zero), ref);
  if (rank === 0) {
    check.begin('consolidated into one safetensors model that round-trips');
    consolidateZeroCheckpoint(dir, consolidated);
    const { tensors } = readSafetensors(consolidated);
    check.equal('tensor count', tensors.size, M.SPECS.length);
    for (const t of ref.tensors) {
      const c = tensors.get(t.name);
      check.ok(`${t.name} in its shape`, c && c.shape.join() === t.shape.join(), JSON.stringify(c && c.shape));
      check.ok(`${t.name} values`, c && bits(c.data) === bits(atSave.subarray(t.offset, t.offset + t.size)), 'differs');
    }
    const back = new ParameterSet(M.SPECS);
    for (const t of back.tensors) back.view(t.name).set(tensors.get(t.name).data);
    check.ok('loads into a ParameterSet', bits(back.data) === bits(atSave), 'differs');
  }
  await zero.free();
}

async function refuse(comm, check, args) {
  for (let i = 0; i < args.length; i += 2) {
    const [dir, file] = [args[i], args[i + 1]];
    check.begin(`a damaged checkpoint is refused on every rank, naming ${file}`);
    const zero = await Zero.create(comm, newSet(comm.size), { stage: 1, optimizer: (s) => new AdamW(s, M.OPT) });
    const before = bits(zero.shard.data);
    try {
      await loadZeroCheckpoint(zero, dir);
      check.fail('load', 'accepted');
    } catch (e) {
      check.ok('CHECKPOINT_INVALID naming the file', e.code === 'CHECKPOINT_INVALID' && e.message.includes(file), `${e.code}: ${e.message}`);
      check.attach('message', e.message);
    }
    check.ok('nothing written', bits(zero.shard.data) === before, 'the shard changed');
    await zero.free();
  }
}

module.exports = { zeropp, save, load, refuse };
