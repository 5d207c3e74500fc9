'use strict';
// One rank of test/42.torch-gaps.test.js: gather / scatter, the object collectives, bitwise
// reductions, host send/recv in group(), localRank / localSize, comm.store and
// monitoredBarrier, each against values computed here.

const { init } = require('../../dist');
const { Checker, run } = require('../helpers/worker');

const json = (v) => JSON.stringify(v);

async function main() {
  const comm = await init();
  const { rank, size } = comm;
  const check = new Checker(rank);
  const last = size - 1;

  check.begin('gather: the root holds every block in rank order; bytes counted');
  {
    comm.resetStats();
    const n = 5;
    const input = Int32Array.from({ length: n }, (_, i) => rank * 100 + i);
    const out = rank === last ? new Int32Array(n * size).fill(-1) : null;
    const got = await comm.gather(input, out, { root: last });
    const want = Int32Array.from({ length: n * size }, (_, j) => Math.floor(j / n) * 100 + (j % n));
    if (rank === last) check.same('gathered', got, want);
    else check.equal('result off the root', got, null);
    const s = comm.stats().operations.gather;
    check.equal('bytes sent', s.bytesSent, rank === last ? 0 : n * 4);
    check.equal('bytes received', s.bytesReceived, rank === last ? (size - 1) * n * 4 : 0);
    // float64 onto rank 0, with an output given (and left alone) off the root.
    const f = Float64Array.from({ length: 3 }, (_, i) => rank + i / 4);
    const spare = new Float64Array(3 * size).fill(7);
    await comm.gather(f, spare);
    const wantF = Float64Array.from({ length: 3 * size }, (_, j) => Math.floor(j / 3) + (j % 3) / 4);
    check.same(rank === 0 ? 'gathered float64' : 'output off the root unchanged', spare, rank === 0 ? wantF : new Float64Array(3 * size).fill(7));
  }

  check.begin('scatter: block r of the root input lands on rank r');
  {
    comm.resetStats();
    const n = 4;
    const root = size > 1 ? 1 : 0;
    const input = rank === root ? BigInt64Array.from({ length: n * size }, (_, j) => BigInt(j) * 3n - 5n) : null;
    const out = new BigInt64Array(n);
    await comm.scatter(input, out, { root });
    check.same('block', out, BigInt64Array.from({ length: n }, (_, i) => BigInt(rank * n + i) * 3n - 5n));
    const s = comm.stats().operations.scatter;
    check.equal('bytes sent', s.bytesSent, rank === root ? (size - 1) * n * 8 : 0);
    check.equal('bytes received', s.bytesReceived, rank === root ? 0 : n * 8);
  }

  check.begin('broadcastObject: the root value on every rank');
  {
    const config = { lr: 0.001, layers: [64, 32, 10], name: 'ü-net ✓', nested: { on: true, off: null } };
    const got = await comm.broadcastObject(rank === last ? config : { ignored: rank }, { root: last });
    check.equal('value', json(got), json(config));
    const str = await comm.broadcastObject(rank === 0 ? 'only a string' : 0);
    check.equal('string', str, 'only a string');
  }

  check.begin('allGatherObject: every rank value in rank order, lengths differing');
  {
    const mine = { rank, loss: rank / 8, tags: Array.from({ length: rank * 3 }, (_, i) => `t${i}`) };
    const got = await comm.allGatherObject(mine);
    const want = Array.from({ length: size }, (_, r) => ({ rank: r, loss: r / 8, tags: Array.from({ length: r * 3 }, (_, i) => `t${i}`) }));
    check.equal('values', json(got), json(want));
  }

  check.begin('bitwise reductions on integer dtypes');
  {
    const n = 9;
    const v = (r, i) => ((r + 1) * 37 + i * 11) & 0x7f;
    const fold = (f, init) => Array.from({ length: n }, (_, i) => {
      let acc = init;
      for (let r = 0; r < size; r++) acc = f(acc, v(r, i));
      return acc;
    });
    for (const [op, f, init] of [['band', (a, b) => a & b, 0x7f], ['bor', (a, b) => a | b, 0], ['bxor', (a, b) => a ^ b, 0]]) {
      const i32 = Int32Array.from({ length: n }, (_, i) => v(rank, i) | (i << 20));
      await comm.allReduce(i32, { op });
      const hi = (i) => (op === 'bxor' ? (size % 2 === 1 ? i << 20 : 0) : i << 20);
      check.same(`allReduce ${op} int32`, i32, Int32Array.from(fold(f, init), (x, i) => x | hi(i)));
      const u8 = Uint8Array.from({ length: n }, (_, i) => v(rank, i));
      const out = new Uint8Array(n);
      await comm.allReduce(u8, { op, output: out });
      check.same(`allReduce ${op} uint8 out of place`, out, Uint8Array.from(fold(f, init)));
      const i64 = BigInt64Array.from({ length: n }, (_, i) => BigInt(v(rank, i)) | (1n << 62n));
      await comm.reduce(i64, { op, root: last });
      if (rank === last) {
        const top = op === 'bxor' ? (size % 2 === 1 ? 1n << 62n : 0n) : 1n << 62n;
        check.same(`reduce ${op} int64`, i64, BigInt64Array.from(fold(f, init), (x) => BigInt(x) | top));
      }
      const rs = Int8Array.from({ length: n * size }, (_, j) => v(rank, j % n) - 64);
      const block = new Int8Array(n);
      await comm.reduceScatter(rs, block, { op });
      const want = Array.from({ length: n }, (_, i) => {
        let acc = op === 'band' ? -1 : 0;
        for (let r = 0; r < size; r++) acc = f(acc, v(r, i) - 64);
        return acc;
      });
      check.same(`reduceScatter ${op} int8`, block, Int8Array.from(want));
    }
  }

  if (size > 1) {
    check.begin('group: a host ring exchange completes with the group');
    const next = (rank + 1) % size;
    const prev = (rank + size - 1) % size;
    const out = Float32Array.from({ length: 1000 }, (_, i) => rank * 1000 + i);
    const inbox = new Float32Array(1000);
    const inbox2 = new Float32Array(10);
    await comm.group(() => {
      comm.send(out, next);
      comm.recv(inbox, prev);
      comm.send(Float32Array.of(rank, 1, 2, 3, 4, 5, 6, 7, 8, 9), prev, { tag: 5 });
      comm.recv(inbox2, next, { tag: 5 });
    });
    check.same('received from rank - 1', inbox, Float32Array.from({ length: 1000 }, (_, i) => prev * 1000 + i));
    check.same('received from rank + 1', inbox2, Float32Array.of(next, 1, 2, 3, 4, 5, 6, 7, 8, 9));
    check.equal('nothing pending after the group', comm.pending, 0);
    // The top 256 tags belong to monitoredBarrier.
    let tagErr;
    try {
      comm.send(out, next, { tag: 0xffffff00 });
    } catch (e) {
      tagErr = e;
    }
    check.ok('tag 0xffffff00 refused', tagErr instanceof RangeError && tagErr.message.startsWith('options.tag: expected'), tagErr && tagErr.message);
  }

  check.begin('localRank and localSize');
  {
    check.equal('localRank', comm.localRank, Number(process.env.LOCAL_RANK));
    check.equal('localSize', comm.localSize, Number(process.env.LOCAL_WORLD_SIZE));
    // One host: a child's local ranks are its ranks.
    const child = await comm.split(rank % 2, size - rank);
    check.equal('child localRank', child.localRank, child.rank);
    check.equal('child localSize', child.localSize, child.size);
    check.begin('store: set, get, add, wait under the communicator namespace');
    const store = comm.store;
    if (rank === 0) await store.set('config', 'lr=0.1');
    check.equal('get', Buffer.from(await store.get('config')).toString(), 'lr=0.1');
    const after = await store.add('counter', rank + 1);
    check.ok('add returns a partial sum', after >= rank + 1 && after <= (size * (size + 1)) / 2, `got ${after}`);
    await store.set(`done/${rank}`, new Uint8Array([rank]));
    await store.wait(Array.from({ length: size }, (_, r) => `done/${r}`));
    check.equal('add after every rank', await store.add('counter', 0), (size * (size + 1)) / 2);
    const raw = await store.get('counter');
    check.equal('counter as stored: 8 bytes little-endian', Buffer.from(raw).readBigInt64LE(0), BigInt((size * (size + 1)) / 2));
    // The child's keys live apart from the parent's.
    if (child.rank === 0) await child.store.set('config', `child ${rank % 2}`);
    check.equal('child get', Buffer.from(await child.store.get('config')).toString(), `child ${rank % 2}`);
    check.equal('parent unchanged', Buffer.from(await store.get('config')).toString(), 'lr=0.1');
    let err;
    try {
      await store.get('never-set', 200);
    } catch (e) {
      err = e;
    }
    check.equal('get of a missing key times out', err && err.code, 'TIMEOUT');
    await child.destroy();
  }

  check.begin('monitoredBarrier: all arrive');
  await comm.monitoredBarrier({ timeoutMs: 20000 });
  await comm.monitoredBarrier();
  check.ok('passed twice', true);

  if (size > 1) {
    check.begin('monitoredBarrier names the rank that did not arrive');
    const timeoutMs = 1500;
    if (rank === last) {
      // Stays away until the others have seen the barrier fail.
      await comm.store.wait(['barrier-seen'], 30000);
      check.ok('stayed away', true);
    } else {
      const started = Date.now();
      let err;
      try {
        await comm.monitoredBarrier({ timeoutMs });
      } catch (e) {
        err = e;
      }
      const took = Date.now() - started;
      check.equal('code', err && err.code, 'TIMEOUT');
      if (rank === 0) {
        check.equal('missingRanks', json(err && err.missingRanks), json([last]));
        check.ok('message names the rank', err && err.message.includes(`ranks ${last} did not`), err && err.message);
      }
      check.ok('within the timeout and a margin', took >= timeoutMs - 50 && took < timeoutMs + 3000, `took ${took} ms`);
      const seen = await comm.store.add('barrier-failed', 1);
      if (seen === size - 1) await comm.store.set('barrier-seen', '1');
    }
  }

  await comm.destroy();
  check.report();
}

run(main);
