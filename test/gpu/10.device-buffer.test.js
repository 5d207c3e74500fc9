'use strict';
// DeviceBuffer on a CUDA device: round trips for every dtype, fill, views, free and the
// errors for use after free and out-of-range views and copies. Needs a GPU (and is skipped,
// saying why, without one); test/45.backends.test.js also runs it against a host-memory
// stand-in for the CUDA runtime.

const assert = require('node:assert/strict');
const path = require('node:path');
const { deviceBuffers, isCode } = require('../helpers/gpu');

const { backends, DeviceBuffer, CollectiveError } = require(path.join(__dirname, '..', '..', 'dist'));

const N = 1000;

/** Host data of `n` elements for `dtype`, exact in every dtype. */
function sample(dtype, n) {
  switch (dtype) {
    case 'float32': return Float32Array.from({ length: n }, (_, i) => i * 0.5 - 100);
    case 'float64': return Float64Array.from({ length: n }, (_, i) => i / 3 - 7);
    case 'float16': // bit patterns of ordinary half values
    case 'bfloat16': return Uint16Array.from({ length: n }, (_, i) => 0x3c00 + (i % 512));
    case 'int8': return Int8Array.from({ length: n }, (_, i) => (i % 256) - 128);
    case 'uint8': return Uint8Array.from({ length: n }, (_, i) => (i * 7) % 256);
    case 'int32': return Int32Array.from({ length: n }, (_, i) => i * 65537 - 2 ** 30);
    case 'int64': return BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 2n ** 40n - 2n ** 62n);
  }
  throw new Error(dtype);
}

describe('gpu 10 DeviceBuffer', function () {
  let cuda;
  before(function () {
    cuda = backends().cuda;
    if (!cuda.available) {
      console.log(`      skipped: no GPU: ${cuda.reason}`);
      this.skip();
    }
  });

  const { live, alloc, freeAll } = deviceBuffers();
  afterEach(freeAll);

  for (const dtype of ['float32', 'float64', 'float16', 'bfloat16', 'int8', 'uint8', 'int32', 'int64']) {
    it(`round-trips ${dtype}`, function () {
      const host = sample(dtype, N);
      const b = alloc(dtype, N);
      assert.equal(b.dtype, dtype);
      assert.equal(b.length, N);
      assert.equal(b.byteLength, host.byteLength);
      assert.equal(b.device, 0);
      assert.equal(b.freed, false);
      assert.equal(b.copyFrom(host), b);
      const back = b.copyTo();
      assert.equal(back.constructor, host.constructor);
      assert.deepEqual(back, host);
      const into = new host.constructor(N);
      assert.equal(b.copyTo(into), into);
      assert.deepEqual(into, host);
    });
  }

  it('copies at an offset, in and out', function () {
    const b = alloc('int32', 10).fill(0);
    b.copyFrom(Int32Array.of(1, 2, 3), { offset: 7 });
    assert.deepEqual(b.copyTo(), Int32Array.of(0, 0, 0, 0, 0, 0, 0, 1, 2, 3));
    assert.deepEqual(b.copyTo(new Int32Array(2), { offset: 8 }), Int32Array.of(2, 3));
    assert.deepEqual(b.copyTo(undefined, { offset: 6 }), Int32Array.of(0, 1, 2, 3));
  });

  it('fills with a value of the dtype', function () {
    assert.deepEqual(alloc('float32', 5).fill(1.5).copyTo(), new Float32Array(5).fill(1.5));
    assert.deepEqual(alloc('float64', 3).fill(0).copyTo(), new Float64Array(3));
    assert.deepEqual(alloc('int8', 4).fill(-1).copyTo(), new Int8Array(4).fill(-1));
    assert.deepEqual(alloc('int32', 3).fill(-123456).copyTo(), new Int32Array(3).fill(-123456));
    assert.deepEqual(alloc('int64', 3).fill(2n ** 40n + 1n).copyTo(), new BigInt64Array(3).fill(2n ** 40n + 1n));
    assert.deepEqual(alloc('float16', 3).fill(1).copyTo(), new Uint16Array(3).fill(0x3c00));
    assert.deepEqual(alloc('bfloat16', 3).fill(-2).copyTo(), new Uint16Array(3).fill(0xc000));
    // Larger than one staging block.
    const big = alloc('float32', (1 << 21) + 3).fill(0.25).copyTo();
    assert.ok(big.every((v) => v === 0.25));
  });

  it('rejects fill values that do not fit the dtype', function () {
    assert.throws(() => alloc('int8', 1).fill(128), isCode('INVALID_ARGUMENT', /value/));
    assert.throws(() => alloc('int32', 1).fill(0.5), isCode('INVALID_ARGUMENT', /value/));
    assert.throws(() => alloc('int64', 1).fill(2n ** 63n), isCode('INVALID_ARGUMENT', /value/));
    assert.throws(() => alloc('float32', 1).fill(1n), TypeError);
  });

  it('views share the memory, and views of views add their offsets', function () {
    const b = alloc('float32', 8).fill(0);
    const v = b.subarray(2, 6);
    assert.equal(v.length, 4);
    assert.equal(v.byteOffset, 8);
    assert.equal(v.dtype, 'float32');
    assert.ok(v instanceof DeviceBuffer);
    v.copyFrom(Float32Array.of(1, 2, 3, 4));
    assert.deepEqual(b.copyTo(), Float32Array.of(0, 0, 1, 2, 3, 4, 0, 0));
    const w = v.subarray(1, 3).fill(9);
    assert.equal(w.byteOffset, 12);
    assert.deepEqual(b.copyTo(), Float32Array.of(0, 0, 1, 9, 9, 4, 0, 0));
    assert.equal(b.subarray(3).length, 5);
    assert.equal(b.subarray(8, 8).length, 0);
  });

  it('rejects out-of-range views and copies, naming the argument', function () {
    const b = alloc('float32', 8);
    assert.throws(() => b.subarray(0, 9), (e) => e instanceof RangeError && isCode('INVALID_ARGUMENT', /^end/)(e));
    assert.throws(() => b.subarray(5, 4), (e) => e instanceof RangeError && isCode('INVALID_ARGUMENT', /^end/)(e));
    assert.throws(() => b.subarray(-1), (e) => e instanceof RangeError && isCode('INVALID_ARGUMENT', /^begin/)(e));
    assert.throws(() => b.subarray(1.5), isCode('INVALID_ARGUMENT', /^begin/));
    assert.throws(() => b.copyFrom(new Float32Array(9)), (e) => e instanceof RangeError && isCode('INVALID_ARGUMENT', /^source/)(e));
    assert.throws(() => b.copyFrom(new Float32Array(2), { offset: 7 }), isCode('INVALID_ARGUMENT', /^source/));
    assert.throws(() => b.copyFrom(new Float32Array(1), { offset: 9 }), isCode('INVALID_ARGUMENT', /^options\.offset/));
    assert.throws(() => b.copyTo(new Float32Array(9)), isCode('INVALID_ARGUMENT', /^target/));
    assert.throws(() => b.copyFrom(new Float64Array(2)), (e) => e instanceof TypeError && isCode('INVALID_ARGUMENT', /^source/)(e));
    assert.throws(() => b.copyTo(new Int32Array(2)), (e) => e instanceof TypeError && isCode('INVALID_ARGUMENT', /^target/)(e));
  });

  it('free() releases once; other use after it is DESTROYED', function () {
    const b = new DeviceBuffer('float32', 16);
    b.free();
    assert.equal(b.freed, true);
    b.free(); // a no-op
    const destroyed = (e) => e instanceof CollectiveError && isCode('DESTROYED', /freed/)(e);
    assert.throws(() => b.copyFrom(new Float32Array(1)), destroyed);
    assert.throws(() => b.copyTo(), destroyed);
    assert.throws(() => b.fill(1), destroyed);
    assert.throws(() => b.subarray(0, 1), destroyed);
    assert.equal(b.length, 16); // the shape stays readable
  });

  it('freeing the parent makes its views unusable; freeing a view leaves the parent', function () {
    const b = new DeviceBuffer('int32', 8);
    const v = b.subarray(0, 4);
    v.free();
    assert.equal(v.freed, true);
    assert.equal(b.freed, false);
    b.fill(3);
    assert.throws(() => v.copyTo(), isCode('DESTROYED'));
    const w = b.subarray(4);
    b.free();
    assert.equal(w.freed, true);
    assert.throws(() => w.fill(1), isCode('DESTROYED'));
    assert.throws(() => w.subarray(0, 1), isCode('DESTROYED'));
  });

  it('a view keeps the memory alive after its parent is dropped', function () {
    let b = new DeviceBuffer('uint8', 64).fill(7);
    const v = b.subarray(60);
    b = null;
    if (global.gc) global.gc();
    assert.deepEqual(v.copyTo(), Uint8Array.of(7, 7, 7, 7));
  });

  it('buffers dropped without free() are released by the garbage collector', function () {
    for (let i = 0; i < 64; i++) new DeviceBuffer('float32', 1 << 16).fill(i);
    if (global.gc) global.gc();
  });

  it('allocates on the chosen device and rejects a device that is not there', function () {
    assert.throws(() => new DeviceBuffer('float32', 4, { device: cuda.devices }), (e) => e instanceof RangeError && isCode('INVALID_ARGUMENT', /^options\.device/)(e));
    const last = cuda.devices - 1;
    const b = alloc('float64', 4, { device: last }).copyFrom(Float64Array.of(1, 2, 3, 4));
    assert.equal(b.device, last);
    assert.deepEqual(b.copyTo(), Float64Array.of(1, 2, 3, 4));
  });

  it('a zero-length buffer is allowed and copies nothing', function () {
    const b = alloc('float32', 0);
    assert.equal(b.byteLength, 0);
    assert.deepEqual(b.copyTo(), new Float32Array(0));
    b.copyFrom(new Float32Array(0)).fill(1);
  });
});
