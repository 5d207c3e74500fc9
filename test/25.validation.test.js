'use strict';
// Bad arguments are refused synchronously, before anything is queued, with a
// TypeError (wrong kind of value) or RangeError (right kind, wrong value),
// code INVALID_ARGUMENT, and a message that starts with the argument's name.

const assert = require('node:assert/strict');
const { oneRankCommunicator, refuses } = require('./helpers/refuses');

describe('25 argument validation', function () {
  this.timeout(20000);
  const one = oneRankCommunicator();
  let comm;
  before(function () {
    comm = one.comm;
  });

  const f32 = (n = 4) => new Float32Array(n);

  describe('buffers', function () {
    const notArrays = [
      ['a plain array', [1, 2, 3]],
      ['an ArrayBuffer', new ArrayBuffer(16)],
      ['a DataView', new DataView(new ArrayBuffer(16))],
      ['null', null],
      ['undefined', undefined],
      ['a number', 3],
      ['a string', 'abc'],
      ['an Int16Array', new Int16Array(4)],
      ['a Uint32Array', new Uint32Array(4)],
      ['a BigUint64Array', new BigUint64Array(4)],
    ];
    for (const [what, value] of notArrays) {
      it(`refuses ${what} as a buffer in every operation`, function () {
        refuses(() => comm.allReduce(value), TypeError, 'buffer');
        refuses(() => comm.broadcast(value), TypeError, 'buffer');
        refuses(() => comm.reduce(value), TypeError, 'buffer');
        refuses(() => comm.allGather(value, f32()), TypeError, 'input');
        refuses(() => comm.allGather(f32(), value), TypeError, 'output');
        refuses(() => comm.reduceScatter(value, f32()), TypeError, 'input');
        refuses(() => comm.reduceScatter(f32(), value), TypeError, 'output');
        refuses(() => comm.allToAll(value, f32()), TypeError, 'input');
        refuses(() => comm.allToAll(f32(), value), TypeError, 'output');
        refuses(() => comm.allToAllV(value, [4], f32(), [4]), TypeError, 'input');
        refuses(() => comm.allToAllV(f32(), [4], value, [4]), TypeError, 'output');
        // An undefined output means "in place", so it is no error.
        if (value !== undefined) refuses(() => comm.allReduce(f32(), { output: value }), TypeError, 'options.output');
      });
    }

    it('refuses a Uint16Array without a dtype', function () {
      const u16 = new Uint16Array(4);
      refuses(() => comm.allReduce(u16), TypeError, 'dtype');
      refuses(() => comm.broadcast(u16), TypeError, 'dtype');
      refuses(() => comm.reduce(u16), TypeError, 'dtype');
      refuses(() => comm.allGather(u16, new Uint16Array(4)), TypeError, 'dtype');
      refuses(() => comm.reduceScatter(u16, new Uint16Array(4)), TypeError, 'dtype');
      refuses(() => comm.allToAll(u16, new Uint16Array(4)), TypeError, 'dtype');
      refuses(() => comm.allToAllV(u16, [4], new Uint16Array(4), [4]), TypeError, 'dtype');
    });

    it('refuses a dtype that the array cannot carry', function () {
      refuses(() => comm.allReduce(f32(), { dtype: 'float16' }), TypeError, 'buffer');
      refuses(() => comm.allReduce(new Uint8Array(4), { dtype: 'int8' }), TypeError, 'buffer');
      refuses(() => comm.allReduce(new Int32Array(4), { dtype: 'int64' }), TypeError, 'buffer');
      refuses(() => comm.allReduce(new Uint16Array(4), { dtype: 'float32' }), TypeError, 'buffer');
      refuses(() => comm.broadcast(new Float64Array(4), { dtype: 'bfloat16' }), TypeError, 'buffer');
      refuses(() => comm.allGather(new Uint16Array(4), new Uint16Array(4), { dtype: 'int32' }), TypeError, 'input');
    });

    it('refuses an unknown dtype', function () {
      refuses(() => comm.allReduce(new Uint16Array(4), { dtype: 'float8' }), TypeError, 'dtype');
      refuses(() => comm.allReduce(f32(), { dtype: 42 }), TypeError, 'dtype');
    });

    it('refuses an output whose type differs from the input', function () {
      refuses(() => comm.allReduce(f32(), { output: new Float64Array(4) }), TypeError, 'options.output');
      refuses(() => comm.allGather(f32(1), new Int32Array(1)), TypeError, 'output');
      refuses(() => comm.reduceScatter(f32(1), new Float64Array(1)), TypeError, 'output');
      refuses(() => comm.allToAll(f32(1), new Int8Array(1)), TypeError, 'output');
      refuses(() => comm.reduce(f32(), { output: new Int32Array(4) }), TypeError, 'options.output');
    });
  });

  describe('reduce ops', function () {
    it('refuses an unknown op', function () {
      for (const op of ['mean', 'SUM', '', 0, null]) {
        refuses(() => comm.allReduce(f32(), { op }), TypeError, 'options.op');
        refuses(() => comm.reduce(f32(), { op }), TypeError, 'options.op');
        refuses(() => comm.reduceScatter(f32(1), f32(1), { op }), TypeError, 'options.op');
      }
    });

    it('refuses avg on integer dtypes', function () {
      for (const a of [new Int32Array(4), new Int8Array(4), new Uint8Array(4), new BigInt64Array(4)]) {
        refuses(() => comm.allReduce(a, { op: 'avg' }), RangeError, 'options.op');
        refuses(() => comm.reduce(a, { op: 'avg' }), RangeError, 'options.op');
        refuses(() => comm.reduceScatter(a, a.slice(), { op: 'avg' }), RangeError, 'options.op');
      }
    });
  });

  describe('lengths', function () {
    it('refuses outputs of the wrong length', function () {
      refuses(() => comm.allReduce(f32(4), { output: f32(3) }), RangeError, 'options.output');
      refuses(() => comm.reduce(f32(4), { output: f32(5) }), RangeError, 'options.output');
      refuses(() => comm.allGather(f32(4), f32(3)), RangeError, 'output');
      refuses(() => comm.reduceScatter(f32(4), f32(3)), RangeError, 'input');
      refuses(() => comm.allToAll(f32(4), f32(3)), RangeError, 'output');
    });

    it('refuses allToAllV splits that do not sum to the length', function () {
      refuses(() => comm.allToAllV(f32(4), [3], f32(4), [4]), RangeError, 'inputSplits');
      refuses(() => comm.allToAllV(f32(4), [4], f32(4), [5]), RangeError, 'outputSplits');
      refuses(() => comm.allToAllV(f32(0), [1], f32(0), [0]), RangeError, 'inputSplits');
    });

    it('refuses allToAllV splits that are not one count per rank', function () {
      refuses(() => comm.allToAllV(f32(4), [2, 2], f32(4), [4]), TypeError, 'inputSplits');
      refuses(() => comm.allToAllV(f32(4), [4], f32(4), []), TypeError, 'outputSplits');
      refuses(() => comm.allToAllV(f32(4), 4, f32(4), [4]), TypeError, 'inputSplits');
      refuses(() => comm.allToAllV(f32(4), [-1], f32(4), [4]), RangeError, 'inputSplits[]');
      refuses(() => comm.allToAllV(f32(4), [1.5], f32(4), [4]), TypeError, 'inputSplits[]');
    });
  });

  describe('ranks', function () {
    it('refuses a root out of range', function () {
      for (const root of [1, -1, 100]) {
        refuses(() => comm.broadcast(f32(), { root }), RangeError, 'options.root');
        refuses(() => comm.reduce(f32(), { root }), RangeError, 'options.root');
      }
      for (const root of [0.5, '0', null]) {
        refuses(() => comm.broadcast(f32(), { root }), TypeError, 'options.root');
        refuses(() => comm.reduce(f32(), { root }), TypeError, 'options.root');
      }
    });

    it('refuses a peer that is this rank or out of range', function () {
      refuses(() => comm.send(f32(), 0), RangeError, 'peer');
      refuses(() => comm.recv(f32(), 0), RangeError, 'peer');
      refuses(() => comm.send(f32(), 1), RangeError, 'peer');
      refuses(() => comm.recv(f32(), -1), RangeError, 'peer');
      refuses(() => comm.send(f32(), '1'), TypeError, 'peer');
    });

    it('refuses bad subgroup rank lists', async function () {
      await assert.rejects(comm.subgroup([]), (err) => err instanceof TypeError && err.code === 'INVALID_ARGUMENT' && /^ranks/.test(err.message));
      await assert.rejects(comm.subgroup([1]), (err) => err instanceof RangeError && err.code === 'INVALID_ARGUMENT' && /^ranks/.test(err.message));
      await assert.rejects(comm.subgroup([0, 0]), (err) => err instanceof RangeError && err.code === 'INVALID_ARGUMENT' && /^ranks/.test(err.message));
    });
  });

  describe('options', function () {
    const calls = {
      allReduce: (o) => comm.allReduce(f32(), o),
      reduce: (o) => comm.reduce(f32(), o),
      broadcast: (o) => comm.broadcast(f32(), o),
      allGather: (o) => comm.allGather(f32(), f32(), o),
      reduceScatter: (o) => comm.reduceScatter(f32(), f32(), o),
      allToAll: (o) => comm.allToAll(f32(), f32(), o),
      allToAllV: (o) => comm.allToAllV(f32(), [4], f32(), [4], o),
      barrier: (o) => comm.barrier(o),
    };

    for (const [name, call] of Object.entries(calls)) {
      it(`${name}: refuses a bad timeoutMs`, function () {
        refuses(() => call({ timeoutMs: 0 }), RangeError, 'options.timeoutMs');
        refuses(() => call({ timeoutMs: -1 }), RangeError, 'options.timeoutMs');
        refuses(() => call({ timeoutMs: 1.5 }), TypeError, 'options.timeoutMs');
        refuses(() => call({ timeoutMs: 'x' }), TypeError, 'options.timeoutMs');
        refuses(() => call({ timeoutMs: NaN }), TypeError, 'options.timeoutMs');
        refuses(() => call({ timeoutMs: Infinity }), TypeError, 'options.timeoutMs');
      });

      it(`${name}: refuses unknown option keys and non-object options`, function () {
        refuses(() => call({ timeout: 100 }), TypeError, 'options.timeout');
        refuses(() => call({ opp: 'sum' }), TypeError, 'options.opp');
        refuses(() => call('sum'), TypeError, 'options');
        refuses(() => call(null), TypeError, 'options');
        refuses(() => call([]), TypeError, 'options');
      });
    }

    it('refuses options that belong to other operations', function () {
      refuses(() => comm.broadcast(f32(), { op: 'sum' }), TypeError, 'options.op');
      refuses(() => comm.allReduce(f32(), { root: 0 }), TypeError, 'options.root');
      refuses(() => comm.barrier({ dtype: 'float32' }), TypeError, 'options.dtype');
      refuses(() => comm.allGather(f32(), f32(), { output: f32() }), TypeError, 'options.output');
    });

    it('refuses bad split and subgroup options', async function () {
      await assert.rejects(comm.split(0, 0, { timeoutMs: 0 }), (err) => err instanceof RangeError && err.code === 'INVALID_ARGUMENT' && /^options\.timeoutMs/.test(err.message));
      await assert.rejects(comm.split(0.5), (err) => err instanceof TypeError && err.code === 'INVALID_ARGUMENT' && /^color/.test(err.message));
      await assert.rejects(comm.split(0, 'k'), (err) => err instanceof TypeError && err.code === 'INVALID_ARGUMENT' && /^key/.test(err.message));
      await assert.rejects(comm.split(0, 0, { bogus: 1 }), (err) => err instanceof TypeError && err.code === 'INVALID_ARGUMENT' && /^options\.bogus/.test(err.message));
    });
  });

  describe('afterwards', function () {
    it('the communicator still works after refusing bad calls', async function () {
      const a = Float32Array.of(1, 2, 3);
      assert.equal(await comm.allReduce(a), a);
      assert.deepEqual([...a], [1, 2, 3]);
    });
  });
});
