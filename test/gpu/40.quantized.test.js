'use strict';
// Quantized collectives over DeviceBuffers (CUDA codec kernels + NCCL): every one of them gives
// the bytes the host path gives for the same input and options (the host path is checked against
// a float64 reference in test/35), error feedback and stochastic rounding included; and the
// argument errors of the device form. On 2 GPUs, two ranks compare the device result with the
// host result of the same call. Needs CUDA, NCCL and libcollectives_cuda (skipped, saying why,
// without them); test/45.backends.test.js also runs it against host-memory stand-ins.

const assert = require('node:assert/strict');
const path = require('node:path');

const DIST = path.join(__dirname, '..', '..', 'dist');
const { deviceBuffers, isCode, runRanks } = require('../helpers/gpu');
const { backends, init, DeviceBuffer, errorFeedbackLength } = require(DIST);

/** Deterministic values of mixed magnitude (a sine, so no two blocks share a scale). */
function values(n, salt) {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + salt) * (1 + (i % 7)) * 3.5);
}

function bits(a) {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
}

describe('gpu 40 quantized collectives on device', function () {
  this.timeout(60000);
  let comm;
  const { dev, alloc: empty, freeAll } = deviceBuffers();

  before(async function () {
    const b = backends();
    const why = !b.cuda.available
      ? `no GPU: ${b.cuda.reason}`
      : !b.nccl.available
        ? `no NCCL: ${b.nccl.reason}`
        : b.cuda.kernels && !b.cuda.kernels.available
          ? `no CUDA kernels library: ${b.cuda.kernels.reason}`
          : null;
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    comm = await init({ rank: 0, worldSize: 1, masterPort: 0 });
  });
  after(async function () {
    if (comm) await comm.destroy();
  });
  afterEach(freeAll);

  const CASES = [
    { format: 'int8' },
    { format: 'int4', blockSize: 64 },
    { format: 'fp8e4m3', blockSize: 32 },
    { format: 'fp8e5m2' },
    { format: 'int8', stochastic: { seed: 12345 } },
  ];

  for (const c of CASES) {
    const label = `${c.format}${c.blockSize ? `/${c.blockSize}` : ''}${c.stochastic ? ', stochastic' : ''}`;
    it(`allReduce, reduceScatter, allGather and allToAll (${label}) give the host path's bytes`, async function () {
      const n = 1000; // not a multiple of any block size
      const host = values(n, 1);
      // allReduce in place, with avg, and error feedback over three calls.
      const rh = new Float32Array(errorFeedbackLength('allReduce', n, 1));
      const rd = dev('float32', rh);
      const h = Float32Array.from(host);
      const d = dev('float32', host);
      for (let k = 0; k < 3; k++) {
        await comm.allReduceQuantized(h, { ...c, op: 'avg', errorFeedback: rh }).wait();
        assert.equal(await comm.allReduceQuantized(d, { ...c, op: 'avg', errorFeedback: rd }).wait(), d);
        assert.equal(bits(d.copyTo()), bits(h), `allReduce call ${k + 1}`);
        assert.equal(bits(rd.copyTo()), bits(rh), `allReduce residual after call ${k + 1}`);
      }
      // Out of place; the input is left unchanged.
      const src = dev('float32', host);
      const out = empty('float32', n);
      const hout = new Float32Array(n);
      await comm.allReduceQuantized(Float32Array.from(host), { ...c, output: hout }).wait();
      await comm.allReduceQuantized(src, { ...c, output: out }).wait();
      assert.equal(bits(out.copyTo()), bits(hout));
      assert.equal(bits(src.copyTo()), bits(host));
      // The other three.
      for (const kind of ['reduceScatter', 'allGather', 'allToAll']) {
        const hostOut = new Float32Array(n);
        const devOut = empty('float32', n);
        await comm[`${kind}Quantized`](host, hostOut, c).wait();
        assert.equal(await comm[`${kind}Quantized`](dev('float32', host), devOut, c).wait(), devOut);
        assert.equal(bits(devOut.copyTo()), bits(hostOut), kind);
      }
    });
  }

  it('bfloat16 and float16 buffers, and views at an offset', async function () {
    for (const dtype of ['bfloat16', 'float16']) {
      const f = values(300, 2);
      const half = new Uint16Array(f.length);
      // The host cast gives the half bits; the device gets the same ones.
      require(path.join(DIST, 'ops')).cast(f, half, { outputDtype: dtype });
      const h = Uint16Array.from(half);
      await comm.allReduceQuantized(h, { dtype, format: 'int8' }).wait();
      const whole = dev(dtype, new Uint16Array(400));
      const view = whole.subarray(50, 350);
      view.copyFrom(half);
      await comm.allReduceQuantized(view, { format: 'int8' }).wait();
      assert.equal(bits(view.copyTo()), bits(h), dtype);
      assert.deepEqual(whole.copyTo(new Uint16Array(50)), new Uint16Array(50), `${dtype}: nothing before the view is written`);
    }
  });

  it('refuses mixed, mistyped, freed and mis-sized arguments, naming them', function () {
    const a = dev('float32', new Float32Array(8));
    assert.throws(() => comm.allReduceQuantized(a, { output: new Float32Array(8) }), isCode('INVALID_ARGUMENT', /options\.output/));
    assert.throws(() => comm.allReduceQuantized(a, { errorFeedback: new Float32Array(16) }), isCode('INVALID_ARGUMENT', /options\.errorFeedback/));
    assert.throws(() => comm.allReduceQuantized(a, { errorFeedback: empty('float32', 3) }), isCode('INVALID_ARGUMENT', /options\.errorFeedback/));
    assert.throws(() => comm.allReduceQuantized(a, { errorFeedback: empty('int32', 16) }), isCode('INVALID_ARGUMENT', /options\.errorFeedback/));
    assert.throws(() => comm.allReduceQuantized(dev('int32', new Int32Array(8))), isCode('INVALID_ARGUMENT', /buffer/));
    assert.throws(() => comm.allGatherQuantized(a, empty('float32', 9)), isCode('INVALID_ARGUMENT', /output/));
    assert.throws(() => comm.reduceScatterQuantized(a, empty('float32', 3)), isCode('INVALID_ARGUMENT', /^input: expected 3 elements/));
    assert.throws(() => comm.allReduceQuantized(a, { dtype: 'float16' }), isCode('INVALID_ARGUMENT', /options\.dtype/));
    const whole = empty('float32', 32);
    assert.throws(() => comm.allReduceQuantized(whole.subarray(0, 8), { errorFeedback: whole.subarray(4, 20) }), isCode('INVALID_ARGUMENT', /options\.errorFeedback: must not overlap/));
    // Inside group() the kernels would run before the group's exchanges.
    assert.throws(() => comm.group(() => comm.allReduceQuantized(a)), isCode('INVALID_ARGUMENT', /cannot run inside group\(\)/));
    assert.throws(() => comm.allReduceQuantized(a, { op: 'max' }), isCode('INVALID_ARGUMENT', /options\.op/));
    const f = new DeviceBuffer('float32', 8);
    f.free();
    assert.throws(() => comm.allReduceQuantized(f), isCode('DESTROYED'));
  });

  it('2 ranks on 2 GPUs: the device result equals the host result of the same call', async function () {
    const devices = backends().cuda.devices;
    if (devices < 2 || process.env.COLLECTIVES_TEST_ONE_GPU) {
      console.log(`      skipped: needs 2 GPUs, this machine shows ${devices}`);
      this.skip();
    }
    const code = (rank, port) => `
      const assert = require('node:assert/strict');
      const c = require(${JSON.stringify(DIST)});
      const bits = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
      (async () => {
        const comm = await c.init({ rank: ${rank}, worldSize: 2, masterAddr: '127.0.0.1', masterPort: ${port} });
        const n = 1001;
        const mine = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11 + ${rank}) * (1 + (i % 5)));
        for (const format of ['int8', 'int4']) {
          const h = Float32Array.from(mine);
          await comm.allReduceQuantized(h, { format }).wait();
          const d = new c.DeviceBuffer('float32', n, { device: ${rank} });
          d.copyFrom(mine);
          await comm.allReduceQuantized(d, { format }).wait();
          assert.equal(bits(d.copyTo()), bits(h), format);
          d.free();
        }
        await comm.destroy();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    await runRanks(2, code);
  });
});
