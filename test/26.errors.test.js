'use strict';
// One way to fail (docs/errors.md): a bad argument is a TypeError or RangeError with
// code INVALID_ARGUMENT whose message starts `<name>: expected …, got …`; anything else is a
// CollectiveError with a stable code. One table of bad calls, each asserted for its class,
// its code and the argument it names.

const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const DIST = path.join(__dirname, '..', 'dist');
const c = require(DIST);
const ops = require(path.join(DIST, 'ops'));
const { StoreServer } = require(path.join(DIST, 'store', 'server.js'));

const f32 = (n) => new Float32Array(n);

/** [what, call (given a 1-rank communicator), error class, argument named]. */
const BAD_ARGUMENTS = [
  ['an unknown option of allReduce', (comm) => comm.allReduce(f32(4), { opp: 'sum' }), TypeError, 'options.opp'],
  ['an unknown reduction', (comm) => comm.allReduce(f32(4), { op: 'mean' }), TypeError, 'options.op'],
  ['a non-array buffer', (comm) => comm.allReduce([1, 2]), TypeError, 'buffer'],
  ['an out-of-place output of another length', (comm) => comm.allReduce(f32(4), { output: f32(5) }), RangeError, 'options.output'],
  ['reduceScatter input of the wrong length', (comm) => comm.reduceScatter(f32(3), f32(4)), RangeError, 'input'],
  ['allGather output of the wrong length', (comm) => comm.allGather(f32(4), f32(3)), RangeError, 'output'],
  ['allGather without an output', (comm) => comm.allGather(f32(4)), TypeError, 'output'],
  ['a root outside the world', (comm) => comm.broadcast(f32(4), { root: 1 }), RangeError, 'options.root'],
  ['a negative timeout', (comm) => comm.barrier({ timeoutMs: -1 }), RangeError, 'options.timeoutMs'],
  ['an output of another dtype', (comm) => comm.allToAll(f32(4), new Int32Array(4)), TypeError, 'output'],
  ['a quantized format that does not exist', (comm) => comm.allReduceQuantized(f32(4), { format: 'int3' }), TypeError, 'options.format'],
  ['a send to this rank', (comm) => comm.send(f32(4), 0), RangeError, 'peer'],
  ['split with a fractional color', (comm) => comm.split(1.5), TypeError, 'color'],
  ['algorithm of a non-string', (comm) => comm.algorithm(7, 8), TypeError, 'op'],
  ['a nested group', (comm) => comm.group(() => comm.group(() => {})), TypeError, 'fn'],
  ['a DeviceBuffer option that does not exist', () => new c.DeviceBuffer('float32', 4, { devcie: 3 }), TypeError, 'options.devcie'],
  ['a DeviceBuffer of an unknown dtype', () => new c.DeviceBuffer('complex64', 4), TypeError, 'dtype'],
  ['axpy with a string scalar', () => ops.axpy('2', f32(2), f32(2)), TypeError, 'a'],
  ['scale of a plain array', () => ops.scale(2, [1, 2]), TypeError, 'x'],
  ['quantize with a block size that is not a multiple of 8', () => c.quantize(f32(16), { blockSize: 12 }), RangeError, 'options.blockSize'],
  ['RANK that is not a number', () => c.rankFromEnvironment({ RANK: 'x', WORLD_SIZE: '2' }), RangeError, 'environment variable RANK'],
  ['a store server without a host', () => StoreServer.start({ host: '', port: 0, token: 't' }), TypeError, 'options.host'],
  ['a store server port out of range', () => StoreServer.start({ host: '127.0.0.1', port: 70000, token: 't' }), RangeError, 'options.port'],
];

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('26 errors: one way to fail', function () {
  let comm;
  before(async function () {
    comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
  });
  after(async function () {
    if (comm) await comm.destroy();
  });

  for (const [what, call, cls, name] of BAD_ARGUMENTS) {
    it(`${what}: ${cls.name} INVALID_ARGUMENT naming ${name}`, async function () {
      let thrown;
      try {
        const r = call(comm);
        if (r && typeof r.then === 'function') await r;
      } catch (err) {
        thrown = err;
      }
      assert.ok(thrown, `${what}: nothing was thrown`);
      assert.equal(thrown.constructor, cls, `${what}: ${thrown.constructor.name}: ${thrown.message}`);
      assert.equal(thrown.code, 'INVALID_ARGUMENT', `${what}: code ${thrown.code}`);
      assert.match(thrown.message, new RegExp(`^${escape(name)}: expected .+, got .+`), what);
    });
  }

  it('a DeviceBuffer where CUDA is missing: CollectiveError BACKEND_UNAVAILABLE', function () {
    if (c.backends().cuda.available) this.skip();
    assert.throws(
      () => new c.DeviceBuffer('float32', 4),
      (e) => e instanceof c.CollectiveError && e.code === 'BACKEND_UNAVAILABLE' && e.operation === 'DeviceBuffer',
    );
  });

  it('a call on a destroyed communicator: CollectiveError DESTROYED naming the operation', async function () {
    const other = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
    await other.destroy();
    assert.throws(
      () => other.allReduce(f32(1)),
      (e) => e instanceof c.CollectiveError && e.code === 'DESTROYED' && e.operation === 'allReduce' && e.rank === 0,
    );
  });

  it('an addon that cannot be loaded: CollectiveError BACKEND_UNAVAILABLE', function () {
    const code = `
      const c = require(${JSON.stringify(DIST)});
      try { c.versions(); console.log('loaded'); }
      catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, isCollectiveError: e instanceof c.CollectiveError })); }`;
    const r = spawnSync(process.execPath, ['-e', code], {
      env: { ...process.env, COLLECTIVES_ADDON: path.join(__dirname, 'no-such-addon.node') },
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(r.stdout), { name: 'CollectiveError', code: 'BACKEND_UNAVAILABLE', isCollectiveError: true }, r.stderr);
  });
});
