'use strict';
// Collectives over DeviceBuffers on the NCCL backend: every collective on a 1-rank
// communicator, checked against values computed here; out-of-place calls; mixing host arrays
// and DeviceBuffers; a 2-rank run when the machine shows 2 or more GPUs. Needs CUDA and NCCL
// (skipped, saying why, without them); test/45.backends.test.js also runs it against
// host-memory stand-ins for the CUDA runtime and NCCL.

const assert = require('node:assert/strict');
const path = require('node:path');

const DIST = path.join(__dirname, '..', '..', 'dist');
const { deviceBuffers, isCode, runRanks } = require('../helpers/gpu');
const { backends, init, DeviceBuffer } = require(DIST);

describe('gpu 30 NCCL', function () {
  this.timeout(60000);
  let comm;
  const { live, dev, freeAll } = deviceBuffers();

  before(async function () {
    const b = backends();
    if (!b.cuda.available || !b.nccl.available) {
      console.log(`      skipped: ${!b.cuda.available ? `no GPU: ${b.cuda.reason}` : `no NCCL: ${b.nccl.reason}`}`);
      this.skip();
    }
    comm = await init({ rank: 0, worldSize: 1, masterPort: 0 });
  });
  after(async function () {
    if (comm) await comm.destroy();
  });
  afterEach(freeAll);

  // With one rank every reduction (sum, prod, min, max, avg) is the identity.
  for (const [dtype, Arr] of [['float32', Float32Array], ['float64', Float64Array], ['int32', Int32Array], ['int8', Int8Array], ['uint8', Uint8Array]]) {
    it(`allReduce ${dtype}, in place and out of place, with every op`, async function () {
      const host = Arr.from({ length: 33 }, (_, i) => (i % 17) - (dtype === 'uint8' ? 0 : 8));
      for (const op of dtype.startsWith('float') ? ['sum', 'prod', 'min', 'max', 'avg'] : ['sum', 'prod', 'min', 'max']) {
        const a = dev(dtype, host);
        const w = comm.allReduce(a, { op });
        assert.equal(await w.wait(), a);
        assert.deepEqual(a.copyTo(), host);
        const out = new DeviceBuffer(dtype, host.length);
        live.push(out);
        assert.equal(await comm.allReduce(a, { op, output: out }).wait(), out);
        assert.deepEqual(out.copyTo(), host);
      }
    });
  }

  it('int64 and bfloat16 all-reduce', async function () {
    const big = BigInt64Array.of(1n, -(2n ** 62n), 2n ** 40n);
    const a = dev('int64', big);
    await comm.allReduce(a).wait();
    assert.deepEqual(a.copyTo(), big);
    const half = Uint16Array.of(0x3f80, 0x4000, 0xbf80);
    const h = dev('bfloat16', half);
    await comm.allReduce(h, { op: 'max' }).wait();
    assert.deepEqual(h.copyTo(), half);
  });

  it('broadcast, reduce, allGather, reduceScatter and allToAll', async function () {
    const host = Float32Array.from({ length: 12 }, (_, i) => i * 1.5 - 4);
    const b = dev('float32', host);
    assert.equal(await comm.broadcast(b, { root: 0 }).wait(), b);
    assert.deepEqual(b.copyTo(), host);

    const r = dev('float32', host);
    const rOut = new DeviceBuffer('float32', 12);
    live.push(rOut);
    assert.equal(await comm.reduce(r, { op: 'sum', output: rOut }).wait(), rOut);
    assert.deepEqual(rOut.copyTo(), host);
    await comm.reduce(r).wait(); // in place on the root
    assert.deepEqual(r.copyTo(), host);

    const g = new DeviceBuffer('float32', 12 * comm.size);
    live.push(g);
    await comm.allGather(dev('float32', host), g).wait();
    assert.deepEqual(g.copyTo(), host);

    const s = new DeviceBuffer('float32', 12 / comm.size);
    live.push(s);
    await comm.reduceScatter(dev('float32', host), s, { op: 'sum' }).wait();
    assert.deepEqual(s.copyTo(), host);

    const t = new DeviceBuffer('float32', 12);
    live.push(t);
    await comm.allToAll(dev('float32', host), t).wait();
    assert.deepEqual(t.copyTo(), host);
  });

  it('works on views and keeps issue order with host collectives on the same communicator', async function () {
    const host = Int32Array.from({ length: 20 }, (_, i) => i);
    const whole = dev('int32', host);
    const view = whole.subarray(5, 15);
    const hostArr = Float32Array.of(1, 2, 3);
    const works = [comm.allReduce(view), comm.allReduce(hostArr), comm.barrier(), comm.broadcast(view)];
    await Promise.all(works.map((w) => w.wait()));
    assert.deepEqual(whole.copyTo(), host);
    assert.deepEqual(hostArr, Float32Array.of(1, 2, 3));
  });

  it('algorithm(op, bytes, { device: true }) names what runs device calls', function () {
    assert.equal(comm.algorithm('all_reduce', 1024, { device: true }), 'nccl');
    assert.equal(comm.algorithm('broadcast', 8, { device: true }), 'nccl');
    // The barrier stays on Gloo.
    assert.equal(comm.algorithm('barrier', 0, { device: true }), comm.algorithm('barrier', 0));
    // ncclAlltoAll from NCCL 2.28 on, grouped send/recv before.
    const want = process.env.COLLECTIVES_TEST_ALLTOALL ?? (/^2\.(2[89]|[3-9]\d)/.test(backends().nccl.version) ? 'nccl alltoall' : 'nccl send/recv');
    assert.equal(comm.algorithm('alltoall', 1024, { device: true }), want);
    assert.throws(() => comm.algorithm('alltoall', 8, { device: 1 }), isCode('INVALID_ARGUMENT', /^options\.device/));
    assert.throws(() => comm.algorithm('all_to_all', 8, { device: true }), isCode('INVALID_ARGUMENT', /all_to_all/));
  });

  it('mixing host arrays and DeviceBuffers in one call is INVALID_ARGUMENT naming both', function () {
    const d = dev('float32', new Float32Array(4));
    const h = new Float32Array(4);
    assert.throws(() => comm.allReduce(d, { output: h }), (e) => e instanceof TypeError && isCode('INVALID_ARGUMENT', /^options\.output: .*DeviceBuffer like buffer/)(e));
    assert.throws(() => comm.allReduce(h, { output: d }), isCode('INVALID_ARGUMENT', /^buffer: .*DeviceBuffer like options\.output/));
    assert.throws(() => comm.allGather(h, d), isCode('INVALID_ARGUMENT', /^input: .*like output/));
    assert.throws(() => comm.allToAll(d, h), isCode('INVALID_ARGUMENT', /^output: .*like input/));
    assert.throws(() => comm.reduceScatter(d, h), isCode('INVALID_ARGUMENT'));
    assert.throws(() => comm.reduce(d, { output: h }), isCode('INVALID_ARGUMENT'));
  });

  it('checks dtypes, lengths and options of device calls', function () {
    const f = dev('float32', new Float32Array(4));
    const i = dev('int32', new Int32Array(4));
    const short = dev('float32', new Float32Array(3));
    assert.throws(() => comm.allReduce(f, { output: i }), isCode('INVALID_ARGUMENT', /^options\.output: expected a DeviceBuffer of float32/));
    assert.throws(() => comm.allReduce(f, { dtype: 'int32' }), isCode('INVALID_ARGUMENT', /^options\.dtype/));
    assert.throws(() => comm.allReduce(f, { output: short }), isCode('INVALID_ARGUMENT', /^options\.output: expected 4 elements/));
    assert.throws(() => comm.allGather(f, short), isCode('INVALID_ARGUMENT', /^output/));
    assert.throws(() => comm.allReduce(f, { op: 'xor' }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => comm.broadcast(f, { root: 1 }), isCode('INVALID_ARGUMENT', /root/));
    assert.throws(() => comm.allReduce(f, { bogus: 1 }), isCode('INVALID_ARGUMENT'));
  });

  it('communicators from split() and subgroup() run device calls on NCCL communicators of their own', async function () {
    const child = await comm.split(0);
    const sub = await comm.subgroup([0]);
    try {
      const host = Float32Array.of(1.5, -2, 3);
      const a = dev('float32', host);
      await comm.allReduce(a).wait();
      await child.allReduce(a, { op: 'max' }).wait();
      await sub.allReduce(a, { op: 'avg' }).wait();
      assert.deepEqual(a.copyTo(), host);
    } finally {
      await child.destroy();
      await sub.destroy();
    }
  });

  it('a freed DeviceBuffer is DESTROYED', function () {
    const f = new DeviceBuffer('float32', 4);
    f.free();
    assert.throws(() => comm.allReduce(f), isCode('DESTROYED'));
  });

  it('group(fn) issues device calls as one NCCL group and completes when they all have', async function () {
    const host = Float32Array.from({ length: 8 }, (_, i) => i - 3);
    const a = dev('float32', host);
    const t = new DeviceBuffer('float32', 8);
    live.push(t);
    const hostArr = Float32Array.of(5);
    const inner = [];
    const g = comm.group(() => {
      inner.push(comm.allReduce(a, { op: 'sum' }), comm.allToAll(a, t), comm.allReduce(hostArr));
    });
    await g.wait();
    await Promise.all(inner.map((w) => w.wait()));
    assert.deepEqual(a.copyTo(), host);
    assert.deepEqual(t.copyTo(), host);
    assert.deepEqual(hostArr, Float32Array.of(5));
    // Empty and host-only groups complete too.
    await comm.group(() => {}).wait();
    await comm.group(() => void comm.barrier()).wait();
  });

  it('group(fn): no nesting, no async fn, and a throwing fn still closes the group', async function () {
    assert.throws(() => comm.group(() => comm.group(() => {})), isCode('INVALID_ARGUMENT', /do not nest/));
    assert.throws(() => comm.group(async () => {}), isCode('INVALID_ARGUMENT', /^fn: expected a synchronous function/));
    assert.throws(() => comm.group('x'), isCode('INVALID_ARGUMENT'));
    assert.throws(() => comm.group(() => { throw new Error('boom'); }), /boom/);
    const a = dev('int32', Int32Array.of(1, 2, 3));
    await comm.allReduce(a).wait(); // not grouped: completes on its own
    assert.deepEqual(a.copyTo(), Int32Array.of(1, 2, 3));
  });

  it('allToAllV on DeviceBuffers, with its argument checks', async function () {
    const host = Int32Array.from({ length: 7 }, (_, i) => 3 * i - 5);
    const a = dev('int32', host);
    const t = new DeviceBuffer('int32', 7);
    live.push(t);
    const w = comm.allToAllV(a, [7], t, [7]);
    assert.equal(await w.wait(), t);
    assert.deepEqual(t.copyTo(), host);
    // Empty exchanges complete too.
    const e = new DeviceBuffer('int32', 0);
    live.push(e);
    await comm.allToAllV(e, [0], t.subarray(0, 0), [0]).wait();
    assert.throws(() => comm.allToAllV(a, [6], t, [7]), isCode('INVALID_ARGUMENT', /^inputSplits: expected counts summing to the input's length \(7\)/));
    assert.throws(() => comm.allToAllV(a, [7], t, [7, 0]), isCode('INVALID_ARGUMENT', /^outputSplits/));
    assert.throws(() => comm.allToAllV(a, [7], new Int32Array(7), [7]), isCode('INVALID_ARGUMENT', /^output: .*like input/));
    assert.throws(() => comm.allToAllV(a, [7], dev('float32', new Float32Array(7)), [7]), isCode('INVALID_ARGUMENT', /^output: expected a DeviceBuffer of int32/));
    const whole = dev('int32', new Int32Array(10));
    assert.throws(() => comm.allToAllV(whole.subarray(0, 6), [6], whole.subarray(4, 10), [6]), isCode('INVALID_ARGUMENT', /^output: must not overlap the input's memory/));
  });

  it('send/recv of DeviceBuffers: a send to this rank and its receive, paired in a group', async function () {
    const host = Float64Array.from({ length: 9 }, (_, i) => i / 4 - 1);
    const a = dev('float64', host);
    const r = new DeviceBuffer('float64', 9);
    live.push(r);
    let s, q;
    const g = comm.group(() => {
      s = comm.send(a, comm.rank);
      q = comm.recv(r, comm.rank);
    });
    await g.wait();
    assert.equal(await s.wait(), a);
    assert.equal(await q.wait(), r);
    assert.deepEqual(r.copyTo(), host);
    assert.throws(() => comm.send(a, comm.size), isCode('INVALID_ARGUMENT', /^peer/));
    assert.throws(() => comm.recv(r, comm.rank), isCode('INVALID_ARGUMENT', /^peer: expected another rank than this one \(0\), or this one inside group\(fn\)/));
    assert.throws(() => comm.recv(r, 0, { tag: 3 }), isCode('INVALID_ARGUMENT', /^options\.tag: expected 0 or nothing \(NCCL matches device transfers in issue order/));
    assert.throws(() => comm.send(a, 0, { dtype: 'float32' }), isCode('INVALID_ARGUMENT', /^options\.dtype/));
    const freed = new DeviceBuffer('float64', 2);
    freed.free();
    assert.throws(() => comm.group(() => comm.send(freed, comm.rank)), isCode('DESTROYED'));
  });

  it('2 ranks on 2 GPUs: every collective, checked against host arithmetic', async function () {
    const devices = backends().cuda.devices;
    if (devices < 2 || process.env.COLLECTIVES_TEST_ONE_GPU) {
      console.log(`      skipped: needs 2 GPUs, this machine shows ${devices}`);
      this.skip();
    }
    const code = (rank, port) => `
      const assert = require('node:assert/strict');
      const c = require(${JSON.stringify(DIST)});
      (async () => {
        const comm = await c.init({ rank: ${rank}, worldSize: 2, masterAddr: '127.0.0.1', masterPort: ${port} });
        const r = comm.rank;
        const n = 8;
        const mine = Float32Array.from({ length: n }, (_, i) => i + 10 * r);
        const sum = Float32Array.from({ length: n }, (_, i) => 2 * i + 10);
        const a = new c.DeviceBuffer('float32', n, { device: r });
        a.copyFrom(mine);
        await comm.allReduce(a).wait();
        assert.deepEqual(a.copyTo(), sum);
        a.copyFrom(mine);
        await comm.broadcast(a, { root: 1 }).wait();
        assert.deepEqual(a.copyTo(), Float32Array.from({ length: n }, (_, i) => i + 10));
        a.copyFrom(mine);
        const g = new c.DeviceBuffer('float32', 2 * n, { device: r });
        await comm.allGather(a, g).wait();
        assert.deepEqual(g.copyTo(), Float32Array.from({ length: 2 * n }, (_, i) => (i % n) + 10 * Math.floor(i / n)));
        const s = new c.DeviceBuffer('float32', n / 2, { device: r });
        await comm.reduceScatter(a, s).wait();
        assert.deepEqual(s.copyTo(), sum.subarray(r * n / 2, (r + 1) * n / 2));
        const t = new c.DeviceBuffer('float32', n, { device: r });
        await comm.allToAll(a, t).wait();
        const want = new Float32Array(n);
        for (let p = 0; p < 2; p++) for (let i = 0; i < n / 2; i++) want[p * n / 2 + i] = r * n / 2 + i + 10 * p;
        assert.deepEqual(t.copyTo(), want);
        const o = new c.DeviceBuffer('float32', n, { device: r });
        await comm.reduce(a, { output: o, root: 0 }).wait();
        if (r === 0) assert.deepEqual(o.copyTo(), sum);
        // allToAllV: rank 0 sends 3 elements to rank 0 and 5 to rank 1; rank 1 sends 2 and 6.
        const ins = r === 0 ? [3, 5] : [2, 6];
        const outs = r === 0 ? [3, 2] : [5, 6];
        const v = new c.DeviceBuffer('float32', outs[0] + outs[1], { device: r });
        await comm.allToAllV(a, ins, v, outs).wait();
        const sent = (p) => Float32Array.from({ length: n }, (_, i) => i + 10 * p);
        const wantV = r === 0 ? [...sent(0).subarray(0, 3), ...sent(1).subarray(0, 2)] : [...sent(0).subarray(3, 8), ...sent(1).subarray(2, 8)];
        assert.deepEqual(v.copyTo(), Float32Array.from(wantV));
        // send/recv both ways at once, paired in a group.
        const back = new c.DeviceBuffer('float32', n, { device: r });
        await comm.group(() => { comm.send(a, 1 - r); comm.recv(back, 1 - r); }).wait();
        assert.deepEqual(back.copyTo(), sent(1 - r));
        // A group mixing a device all-reduce (NCCL) with a host all-reduce (Gloo).
        const dsum = new c.DeviceBuffer('float32', 2, { device: r }).copyFrom(Float32Array.of(r + 1, 10 * (r + 1)));
        const hsum = Float32Array.of(r + 1);
        const inner = [];
        await comm.group(() => { inner.push(comm.allReduce(dsum), comm.allReduce(hsum)); }).wait();
        await Promise.all(inner);
        assert.deepEqual(dsum.copyTo(), Float32Array.of(3, 30));
        assert.deepEqual(hsum, Float32Array.of(3));
        await comm.destroy();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    await runRanks(2, code);
  });
});
