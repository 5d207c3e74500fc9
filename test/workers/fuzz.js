'use strict';
// One rank (of 2) of test/85.fuzz.test.js: COUNT seeded random invalid calls
// on the public API (world, a destroyed subgroup) and on the native
// communicator directly (the C++ backstop). Each must throw or reject with a
// TypeError, RangeError or CollectiveError; afterwards valid calls must give
// exact results. Both ranks draw the same sequence, so a call that slips
// through would still be matched by the other rank instead of hanging.
// Two cases: the invalid calls (every refusal grouped in one), then the valid
// calls after them.
//
//   argv: SEED COUNT

const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { MessageChannel } = require('node:worker_threads');
const { init, CollectiveError } = require('../../dist');
const { loadAddon } = require('../../dist/core/loader');
const { Checker, run, settle } = require('../helpers/worker');

const SEED = Number(process.argv[2]);
const COUNT = Number(process.argv[3]);

function rng(seed) {
  let s = (seed % 2147483646) + 1;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}

const allowed = (e) => e instanceof TypeError || e instanceof RangeError || e instanceof CollectiveError;

async function main() {
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  const random = rng(SEED);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

  check.begin('invalid calls are refused');
  const dead = await settle('split', world.split(0));
  await settle('destroy', dead.destroy());
  await settle('destroy twice', dead.destroy());

  const { port1 } = new MessageChannel();
  const detached = (n) => {
    const a = new Float32Array(n);
    port1.postMessage(a, [a.buffer]);
    return a;
  };
  const resizable = (n) => new Float32Array(new ArrayBuffer(4 * n, { maxByteLength: 8 * n }));

  // Values that are never a valid buffer of the call's type.
  const BAD_BUFFERS = [
    () => null, () => undefined, () => 1, () => 'buffer', () => ({}), () => [1, 2],
    () => new DataView(new ArrayBuffer(8)), () => new Uint32Array(4), () => new Int16Array(4),
    () => new BigUint64Array(2), () => detached(int(1, 64)), () => resizable(int(1, 16)),
    () => new ArrayBuffer(16), () => Symbol('x'), () => () => 0,
  ];
  const BAD_NUMBERS = [-1, -0.5, NaN, Infinity, -Infinity, 1.5, 2 ** 53, 1e300, '1', null, {}, 2 ** 31, -(2 ** 31) - 1];
  const BAD_TIMEOUTS = [0, -1, NaN, Infinity, 1.5, '1000', null, 2 ** 40, {}];
  const BAD_OPTIONS = [1, 'x', true, () => ({ bogus: 1 }), () => ({ timeoutMs: pick(BAD_TIMEOUTS) })];
  const opt = (o) => (typeof o === 'function' ? o() : o);

  /** One invalid call: [label, thunk]. */
  const makers = [
    () => ['allReduce(bad buffer)', () => world.allReduce(pick(BAD_BUFFERS)())],
    () => ['allReduce(bad op)', () => world.allReduce(new Float32Array(int(1, 8)), { op: pick(['xor', 1, null, 'SUM ']) })],
    () => ['allReduce(int avg)', () => world.allReduce(new Int32Array(int(1, 8)), { op: 'avg' })],
    () => ['allReduce(dtype mismatch)', () => world.allReduce(new Float32Array(4), { dtype: pick(['int32', 'float64', 'bfloat16', 'float8', 7]) })],
    () => ['allReduce(Uint16Array, no dtype)', () => world.allReduce(new Uint16Array(4))],
    () => ['allReduce(output length)', () => world.allReduce(new Float32Array(4), { output: new Float32Array(pick([0, 3, 5, 1000])) })],
    () => ['allReduce(output type)', () => world.allReduce(new Float32Array(4), { output: new Float64Array(4) })],
    () => ['allReduce(bad options)', () => world.allReduce(new Float32Array(4), opt(pick(BAD_OPTIONS)))],
    () => ['reduceScatter(length)', () => world.reduceScatter(new Float32Array(size * 4 + int(1, 3)), new Float32Array(4))],
    () => ['reduceScatter(bad buffer)', () => world.reduceScatter(pick(BAD_BUFFERS)(), new Float32Array(4))],
    () => ['allGather(length)', () => world.allGather(new Float32Array(4), new Float32Array(4 * size + pick([-1, 1, 7])))],
    () => ['allGather(bad output)', () => world.allGather(new Float32Array(4), pick(BAD_BUFFERS)())],
    () => ['broadcast(bad root)', () => world.broadcast(new Float32Array(4), { root: pick([...BAD_NUMBERS, size, size + 1]) })],
    () => ['broadcast(bad buffer)', () => world.broadcast(pick(BAD_BUFFERS)())],
    () => ['reduce(bad root)', () => world.reduce(new Float32Array(4), { root: pick([...BAD_NUMBERS, size]) })],
    () => ['barrier(bad timeout)', () => world.barrier({ timeoutMs: pick(BAD_TIMEOUTS) })],
    () => ['allToAll(indivisible)', () => world.allToAll(new Float32Array(size * 2 + 1), new Float32Array(size * 2 + 1))],
    () => ['allToAllV(bad splits)', () => {
      const splits = Array.from({ length: size }, () => 2);
      splits[int(0, size - 1)] = pick([...BAD_NUMBERS, 3, 1e9]);
      return world.allToAllV(new Float32Array(2 * size), splits, new Float32Array(2 * size), Array(size).fill(2));
    }],
    () => ['allToAllV(splits length)', () => world.allToAllV(new Float32Array(4), Array(size + int(1, 3)).fill(1), new Float32Array(4), [4])],
    () => ['send(bad peer)', () => world.send(new Float32Array(4), pick([...BAD_NUMBERS, rank, size]))],
    () => ['recv(bad tag)', () => world.recv(new Float32Array(4), 1 - rank, { tag: pick([-1, 2 ** 32, NaN, 0.5, 'a']) })],
    () => ['split(bad color)', () => world.split(pick([NaN, 1.5, 'a', {}, 2 ** 31]))],
    () => ['subgroup(bad ranks)', () => world.subgroup(pick([[], [size], [-1], [0, 0], 'all', [NaN]]))],
    () => ['after destroy', () => dead[pick(['allReduce', 'broadcast', 'barrier', 'allGather'])](new Float32Array(4), new Float32Array(4))],
    () => ['destroy again', () => dead.destroy().then(() => { throw new CollectiveError('DESTROYED', 'destroy resolved (expected)', rank, 'destroy'); })],
  ];

  // The native communicator behind a private size-1 communicator: its backstop
  // gets random values in every position.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-fuzz-'));
  const native = await loadAddon().connect({ rank: 0, size: 1, timeoutMs: 2000, prefix: 'fuzz', storePath: dir });
  const ANY = [
    () => pick(BAD_BUFFERS)(), () => pick(BAD_NUMBERS), () => int(-3, 12), () => new Float32Array(int(0, 8)),
    () => new Uint8Array(int(0, 8)), () => 'sum', () => undefined, () => [1, -1, NaN],
  ];
  const METHODS = ['allReduce', 'reduceScatter', 'allGather', 'broadcast', 'reduce', 'barrier', 'allToAll', 'allToAllV', 'send', 'recv', 'split'];
  makers.push(() => {
    const m = pick(METHODS);
    const args = Array.from({ length: int(0, 6) }, () => pick(ANY)());
    return [`native ${m}`, () => native[m](...args), true];
  });

  let refused = 0;
  let acceptedNative = 0;
  const kinds = new Map();
  for (let i = 0; i < COUNT; i++) {
    const [label, call, lenient] = pick(makers)();
    let result;
    try {
      result = call();
    } catch (err) {
      if (allowed(err)) refused++;
      else check.fail(`call ${i} ${label}`, `threw ${err && err.name}: ${err && err.message}`);
      kinds.set(err && err.name, (kinds.get(err && err.name) ?? 0) + 1);
      continue;
    }
    try {
      await result;
      // The native backstop may be handed a valid call by chance.
      if (lenient) acceptedNative++;
      else check.fail(`call ${i} ${label}`, 'was accepted');
    } catch (err) {
      const native = lenient && err && typeof err.code === 'string';
      if (allowed(err) || native) refused++;
      else check.fail(`call ${i} ${label}`, `rejected with ${err && err.name}: ${err && err.message}`);
      kinds.set(`${err && err.name} (rejection)`, (kinds.get(`${err && err.name} (rejection)`) ?? 0) + 1);
    }
  }
  native.close();
  fs.rmSync(dir, { recursive: true, force: true });
  port1.close();
  check.equal('every invalid call was refused', refused + acceptedNative, COUNT);

  // The world still gives exact results.
  check.begin('valid calls after the fuzz');
  for (let k = 0; k < 5; k++) {
    const n = 1000 + k;
    const buf = new Float64Array(n).map((_, i) => i * (rank + 1));
    await settle('allReduce after the fuzz', world.allReduce(buf));
    check.ok(`allReduce ${k} after the fuzz is exact`, buf.every((v, i) => v === i * 3), `got ${buf.slice(0, 4)}`);
    const g = new Int32Array(2 * n);
    await settle('allGather after the fuzz', world.allGather(new Int32Array(n).fill(rank + 7), g));
    check.ok(`allGather ${k} after the fuzz is exact`, g.every((v, i) => v === (i < n ? 7 : 8)), `got ${g[0]}, ${g[n]}`);
  }
  console.log(`rank ${rank}: fuzz seed ${SEED}: ${COUNT} invalid calls, ${refused} refused, ${acceptedNative} native calls valid by chance; ${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  check.report();
  await settle('destroy', world.destroy());
}

run(main);
