'use strict';
// ZeRO: the partition and the options alone, then real ranks through the launcher
// (test/workers/zero.js): stages 1–3 against DataParallel + AdamW bit for bit, memory from the
// buffers' sizes, wire bytes against the formulas, stage 3's prefetch; ZeRO++ on 2 nodes × 2
// ranks (two launchers with --nnodes 2 on this host); sharded checkpoints saved on 4 ranks and
// loaded on 2 and 3, consolidated, and refused when damaged.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { freePort } = require('./helpers/processes');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { ParameterSet, Partition, layersByPrefix, fromDeepSpeedConfig, AdamW, latestCheckpoint, loadCheckpoint } = require('../dist/training');
const { launchWorker, assertSucceeded, collect, CLI, FOREIGN } = require('./helpers/launch');
const { assertCases, parseCases, ranksOf, launched } = require('./helpers/cases');

const WORKER = path.join(__dirname, 'workers', 'zero.js');

const STAGE_NAMES = ['stage 1', 'stage 2', 'stage 2 without overlapComm', 'stage 3'];
const EQUIVALENCE_CASES = [
  ...STAGE_NAMES.flatMap((s) => [`${s} equals DataParallel + AdamW bit for bit after 20 steps`, `${s}: per-rank optimizer state is 1/N of DataParallel's (+ padding)`]),
  'stage 3, gradients ready in another order on odd ranks equals DataParallel + AdamW bit for bit after 20 steps',
  'stage 3: resident parameter bytes outside gather windows are 1/N (+ persistent layers)',
  'ownership is queryable and covers every element once',
  "stage 1: wire bytes per step = 2× parameters' bytes × (N−1)/N",
  "stage 2: wire bytes per step = 2× parameters' bytes × (N−1)/N",
  "stage 3: wire bytes per step = 3× parameters' bytes × (N−1)/N",
  "stage 3 prefetch: the next layer's gather is in flight while the current layer computes",
  'bad options are refused naming the option',
];
const ZEROPP_CASES = [
  'topology: 2 nodes × 2 ranks, from LOCAL_WORLD_SIZE and --nnodes',
  'hpZ alone equals DataParallel + AdamW bit for bit',
  "qwZ: gathered layers within int8's bound of the float32 master",
  "qgZ: averaged gradients within int4's bound (two quantizations: node, then across nodes)",
  "ZeRO++ cross-node bytes ≤ 1/3 of ZeRO-3's; hpZ's backward gathers move no cross-node byte",
  'ZeRO++ (qwZ + hpZ + qgZ) trains close to DataParallel',
];

/** Two launchers on this host, as nodes 0 and 1 of a job of 2 × nproc ranks. */
async function launchTwoNodes(args, { nproc = 2, killAfterMs = 90000 } = {}) {
  const port = await freePort();
  const env = { ...process.env };
  for (const k of FOREIGN) delete env[k];
  env.COLLECTIVES_TOKEN = randomBytes(16).toString('hex');
  env.COLLECTIVES_TIMEOUT_MS = String(killAfterMs / 2);
  const nodes = [0, 1].map((node) => {
    const child = spawn(process.execPath, [CLI, '--nnodes', '2', '--node-rank', String(node), '--nproc-per-node', String(nproc), '--master-addr', '127.0.0.1', '--master-port', String(port), '--grace-ms', '1000', WORKER, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    return collect(child, Date.now(), killAfterMs);
  });
  return Promise.all(nodes);
}

describe('95 ZeRO', function () {
  describe('partition', function () {
    const specs = [{ name: 'a.w', shape: [5, 3] }, { name: 'a.b', shape: [5] }, { name: 'b.w', shape: [7] }];
    it('stages 1–2: contiguous 1/N ranges of the padded flat parameters, ownership per tensor', function () {
      const set = new ParameterSet(specs, { padMultiple: ParameterSet.padMultiple(4) });
      // 27 elements padded to 28: shards of 7.
      const p = Partition.contiguous(set, 4);
      assert.equal(p.shardLength, 7);
      assert.deepEqual(p.shardRange(2), { begin: 14, end: 21 });
      assert.deepEqual(p.ownership('a.b').map((x) => [x.rank, x.tensorBegin, x.tensorEnd, x.shardOffset]), [[2, 0, 5, 1]]);
      assert.deepEqual(p.ownership('a.w').map((x) => [x.rank, x.tensorBegin, x.tensorEnd]), [[0, 0, 7], [1, 7, 14], [2, 14, 15]]);
      assert.deepEqual(p.pieces(3).map((x) => [x.name, x.tensorBegin, x.tensorEnd, x.shardOffset]), [['b.w', 1, 7, 0]]);
      assert.equal(p.padding(3), 1);
      assert.equal(p.padding(0), 0);
      assert.throws(() => Partition.contiguous(new ParameterSet(specs), 4), { code: 'INVALID_ARGUMENT', message: /padMultiple/ });
    });

    it('stage 3: each layer padded to N × block and split in N pieces; small layers persistent', function () {
      const set = new ParameterSet(specs);
      const layers = layersByPrefix(set);
      assert.deepEqual(layers, [['a.w', 'a.b'], ['b.w']]);
      const p = Partition.layered(set, 2, layers, 4, 10);
      // a: 20 elements → 24 (pieces of 12); b: 7 → 8 (pieces of 4), under 10: persistent.
      assert.deepEqual(p.units.map((u) => [u.begin, u.size, u.padded, u.piece, u.shardOffset, u.persistent]), [[0, 20, 24, 12, 0, false], [20, 7, 8, 4, 12, true]]);
      assert.equal(p.shardLength, 16);
      assert.deepEqual(p.pieces(1).map((x) => [x.name, x.tensorBegin, x.tensorEnd, x.shardOffset]), [['a.w', 12, 15, 0], ['a.b', 0, 5, 3], ['b.w', 4, 7, 12]]);
      assert.deepEqual(p.ownership('a.w').map((x) => [x.rank, x.tensorBegin, x.tensorEnd, x.shardOffset]), [[0, 0, 12, 0], [1, 12, 15, 0]]);
      assert.throws(() => p.shardRange(0), { code: 'INVALID_STATE' });
      assert.throws(() => Partition.layered(set, 2, [['a.w'], ['b.w']], 1, 0), { code: 'INVALID_ARGUMENT', message: /options\.layers\[1\]/ });
    });
  });

  describe('options', function () {
    it("reads DeepSpeed's zero_optimization names, refusing unknown ones", function () {
      const opt = (s) => new AdamW(s);
      const o = fromDeepSpeedConfig({
        stage: 3, overlap_comm: true, contiguous_gradients: true, reduce_bucket_size: 5e8, allgather_bucket_size: 2e8,
        stage3_prefetch_bucket_size: 5e7, stage3_param_persistence_threshold: 1e5,
        zero_quantized_weights: true, zero_hpz_partition_size: 8, zero_quantized_gradients: true,
      }, opt);
      assert.deepEqual({ ...o, optimizer: undefined }, {
        stage: 3, overlapComm: true, reduceBucketSize: 5e8, allgatherBucketSize: 2e8, prefetchBucketSize: 5e7,
        paramPersistenceThreshold: 1e5, quantizedWeights: true, hierarchicalPartition: 8, quantizedGradients: true, optimizer: undefined,
      });
      assert.equal(o.optimizer, opt);
      assert.throws(() => fromDeepSpeedConfig({ stage: 2, offload_optimizer: {} }, opt), { code: 'INVALID_ARGUMENT', message: /zeroOptimization\.offload_optimizer/ });
      assert.throws(() => fromDeepSpeedConfig({ contiguous_gradients: false }, opt), { code: 'INVALID_ARGUMENT', message: /contiguous_gradients: expected true/ });
    });
  });

  for (const nproc of [2, 4]) {
    it(`on ${nproc} ranks: stages 1–3 equal DataParallel bit for bit; memory, bytes, prefetch`, async function () {
      this.timeout(120000);
      const res = await launchWorker('zero.js', { nproc, args: ['equivalence'], killAfterMs: 110000 });
      assertCases(res.stdout, ranksOf(nproc), EQUIVALENCE_CASES, launched(res));
      assertSucceeded(res, `zero worker on ${nproc} ranks`);
    });
  }

  it('ZeRO++ on 2 nodes × 2 ranks: cross-node bytes ≤ 1/3 of ZeRO-3, hpZ gathers stay in the node', async function () {
    this.timeout(120000);
    const nodes = await launchTwoNodes(['zeropp'], { killAfterMs: 110000 });
    const stdout = nodes.map((n) => n.stdout).join('\n');
    const context = nodes.map((n, i) => `--- node ${i}: code ${n.code}\n${n.stderr}\n${n.stdout}`).join('\n');
    const byRank = assertCases(stdout, ranksOf(4), ZEROPP_CASES, context);
    for (const r of ranksOf(4)) {
      const c = byRank.get(r).find((x) => x.case.startsWith('ZeRO++ cross-node'));
      assert.ok(c.crossNodeBytes.zero3 > 0 && c.crossNodeBytes.ratio <= 1 / 3, JSON.stringify(c.crossNodeBytes));
    }
    nodes.forEach((n, i) => assert.equal(n.code, 0, `node ${i}: ${context}`));
  });

  describe('sharded checkpoints', function () {
    let root;
    before(function () {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-ck-'));
    });
    after(function () {
      fs.rmSync(root, { recursive: true, force: true });
    });

    it('save on 4 ranks; load on 2 (stage 3) and on 3 (stage 1); training continues; consolidated file round-trips', async function () {
      this.timeout(120000);
      const saved = await launchWorker('zero.js', { nproc: 4, args: ['save', path.join(root, 'ck')], killAfterMs: 60000 });
      assertCases(saved.stdout, ranksOf(4), ['a sharded checkpoint: one safetensors file per rank, one index'], launched(saved));
      assert.deepEqual(fs.readdirSync(root), ['ck'], 'no temporary directory left');
      // The root follows part 1's layout, so its tools find the checkpoint and its loader refuses it by format.
      const dir = latestCheckpoint(path.join(root, 'ck'));
      assert.equal(dir, path.join(root, 'ck', 'step-00000020'));
      assert.deepEqual(fs.readdirSync(dir).sort(), ['checkpoint.json'].concat([0, 1, 2, 3].map((r) => `zero-rank-0000${r}-of-00004.safetensors`)));
      assert.throws(() => loadCheckpoint(dir, { params: new ParameterSet([{ name: 'x', shape: [1] }]) }), { code: 'CHECKPOINT_INVALID', message: /format "collectives-zero\/1"/ });
      for (const [nproc, stage] of [[2, '3'], [3, '1']]) {
        const out = path.join(root, `consolidated-${nproc}.safetensors`);
        const res = await launchWorker('zero.js', { nproc, args: ['load', dir, stage, out], killAfterMs: 60000 });
        assertCases(res.stdout, ranksOf(nproc), (r) => [
          `saved on 4 ranks, loaded on ${nproc} at stage ${stage}: the same parameters and optimizer state`,
          `training continues on ${nproc} ranks: 5 steps equal the one-process reference bit for bit`,
          ...(r === 0 ? ['consolidated into one safetensors model that round-trips'] : []),
        ], launched(res));
        assertSucceeded(res, `load on ${nproc} ranks`);
      }
    });

    it('a shard missing or corrupted is refused on every rank, naming it', async function () {
      this.timeout(60000);
      const dir = path.join(root, 'ck', 'step-00000020');
      const missing = path.join(root, 'missing');
      const corrupt = path.join(root, 'corrupt');
      fs.cpSync(dir, missing, { recursive: true });
      fs.cpSync(dir, corrupt, { recursive: true });
      fs.rmSync(path.join(missing, 'zero-rank-00001-of-00004.safetensors'));
      const victim = path.join(corrupt, 'zero-rank-00002-of-00004.safetensors');
      const bytes = fs.readFileSync(victim);
      bytes[bytes.length - 3] ^= 0x01; // one bit of a value: the file still parses
      fs.writeFileSync(victim, bytes);
      const res = await launchWorker('zero.js', { nproc: 2, args: ['refuse', missing, 'zero-rank-00001-of-00004.safetensors', corrupt, 'zero-rank-00002-of-00004.safetensors'], killAfterMs: 50000 });
      const byRank = assertCases(res.stdout, ranksOf(2), [
        'a damaged checkpoint is refused on every rank, naming zero-rank-00001-of-00004.safetensors',
        'a damaged checkpoint is refused on every rank, naming zero-rank-00002-of-00004.safetensors',
      ], launched(res));
      assert.match(byRank.get(0)[0].message, /missing/);
      assert.match(byRank.get(0)[1].message, /corrupted/);
      assertSucceeded(res, 'refuse');
    });
  });
});
