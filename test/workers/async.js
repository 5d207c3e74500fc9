'use strict';
// One rank (of 2) of test/30.async.test.js: many operations in flight, the JS
// thread staying free, destroy() and abort() with work pending, timeouts.
// One case per behaviour; abort and the per-call timeout run on rank 1 only.

const { init, CollectiveError } = require('../../dist');
const { Checker, run, settle, sleep } = require('../helpers/worker');

const LARGE = (64 * 1024 * 1024) / 4;

/** Fills with small integers so that a sum over 2 ranks is exact. */
function ramp(n, rank, seed) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((i * 7 + seed) % 101) + rank * (i % 5);
  return a;
}

function rampSum(n, seed) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * ((i * 7 + seed) % 101) + (i % 5);
  return a;
}

/** Awaits a promise that must reject; returns the rejection and how long it took. */
async function rejection(promise) {
  const t0 = Date.now();
  try {
    const v = await promise;
    return { value: v, ms: Date.now() - t0 };
  } catch (err) {
    return { err, ms: Date.now() - t0 };
  }
}

async function main() {
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  if (size !== 2) throw new Error(`this worker needs 2 ranks, got ${size}`);
  const peer = 1 - rank;

  // 16 operations in flight complete right, and in issue order.
  {
    check.begin('16 operations in flight');
    const sizes = [1 << 20, 3, 0, 65536, 1, 1 << 18, 7, 4096, 1 << 20, 100, 2, 50000, 1, 1 << 16, 9, 1 << 19];
    const bufs = sizes.map((n, k) => ramp(n, rank, k));
    const order = [];
    const works = bufs.map((b, k) => {
      const w = k % 4 === 3 ? world.allReduce(b, { output: new Float32Array(b.length) }) : world.allReduce(b);
      w.then(() => order.push(k));
      return w;
    });
    check.equal('16 in flight: pending right after issue', world.pending, 16);
    const results = await Promise.all(works.map((w, k) => settle(`in flight #${k}`, w)));
    check.equal('16 in flight: completion order', order.join(','), sizes.map((_, k) => k).join(','));
    results.forEach((res, k) => check.same(`in flight #${k} (n=${sizes[k]})`, res, rampSum(sizes[k], k)));
    check.equal('16 in flight: nothing pending after', world.pending, 0);
  }

  // isCompleted() is false right after issue and true once awaited.
  {
    check.begin('isCompleted and isFailed');
    const buf = ramp(LARGE / 4, rank, 1);
    const w = world.allReduce(buf);
    check.equal('isCompleted right after issue', w.isCompleted(), false);
    check.equal('isFailed right after issue', w.isFailed(), false);
    check.equal('operation name', w.operation, 'allReduce');
    const res = await settle('isCompleted allReduce', w);
    check.equal('isCompleted after await', w.isCompleted(), true);
    check.equal('isFailed after await', w.isFailed(), false);
    check.ok('wait() resolves with the same buffer', (await w.wait()) === buf && res === buf, 'different object');
    check.same('isCompleted allReduce result', buf, rampSum(LARGE / 4, 1));
  }

  // A 64 MiB all-reduce runs off the JS thread: a 5 ms timer keeps firing.
  {
    check.begin('the JS thread stays free during a 64 MiB allReduce');
    const buf = ramp(LARGE, rank, 2);
    await settle('barrier before the timer test', world.barrier());
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = Date.now();
    await settle('64 MiB allReduce under a timer', world.allReduce(buf));
    const ms = Date.now() - t0;
    clearInterval(timer);
    check.ok('timer ticks during a 64 MiB allReduce', ticks >= 3, `${ticks} ticks of 5 ms in ${ms} ms`);
    console.log(`64 MiB allReduce took ${ms} ms, ${ticks} timer ticks`);
    check.same('64 MiB allReduce under a timer', buf, rampSum(LARGE, 2));
  }

  // Bad tags on a 2-rank communicator (a 1-rank one has no valid peer).
  check.begin('bad tags');
  for (const [tag, Kind] of [[-1, RangeError], [2 ** 32, RangeError], [1.5, TypeError], ['a', TypeError]]) {
    try {
      world.send(new Float32Array(1), peer, { tag });
      check.fail(`send with tag ${String(tag)}`, 'was accepted');
    } catch (err) {
      check.ok(`send with tag ${String(tag)}`, err instanceof Kind && err.code === 'INVALID_ARGUMENT' && err.message.startsWith('options.tag'), `threw ${err.name} (${err.code}): ${err.message}`);
    }
  }

  check.begin('destroy() with work pending');
  // Communicators of their own for the tests that end one.
  const forDestroy = await world.split(0);
  const forAbort = await world.split(0);
  const forTimeout = await world.split(0);

  // destroy() waits for pending work, and later calls throw DESTROYED.
  {
    const bufs = [0, 1, 2, 3].map((k) => ramp(1 << 16, rank, 10 + k));
    const works = bufs.map((b) => forDestroy.allReduce(b));
    const destroyed = forDestroy.destroy();
    check.equal('destroyed flag right after destroy()', forDestroy.destroyed, true);
    try {
      forDestroy.allReduce(new Float32Array(4));
      check.fail('allReduce while destroying', 'did not throw');
    } catch (err) {
      check.ok('allReduce while destroying throws DESTROYED', err instanceof CollectiveError && err.code === 'DESTROYED', `threw ${err.name} (${err.code}): ${err.message}`);
    }
    await settle('destroy with 4 pending', destroyed);
    works.forEach((w, k) => {
      check.equal(`pending #${k} completed before destroy() resolved`, w.isCompleted(), true);
      check.equal(`pending #${k} did not fail`, w.isFailed(), false);
    });
    for (let k = 0; k < 4; k++) check.same(`pending #${k} result`, await works[k], rampSum(1 << 16, 10 + k));
    check.equal('pending after destroy', forDestroy.pending, 0);
    for (const [name, call] of [
      ['allReduce', () => forDestroy.allReduce(new Float32Array(4))],
      ['broadcast', () => forDestroy.broadcast(new Float32Array(4))],
      ['barrier', () => forDestroy.barrier()],
      ['send', () => forDestroy.send(new Float32Array(4), peer)],
    ]) {
      try {
        const w = call();
        w.catch(() => {});
        check.fail(`${name} after destroy`, 'did not throw synchronously');
      } catch (err) {
        check.ok(`${name} after destroy throws DESTROYED`, err instanceof CollectiveError && err.code === 'DESTROYED', `threw ${err.name} (${err.code}): ${err.message}`);
      }
    }
    await settle('second destroy()', forDestroy.destroy());
    const r = await rejection(forDestroy.split(0));
    check.ok('split after destroy rejects with DESTROYED', r.err instanceof CollectiveError && r.err.code === 'DESTROYED', r.err ? `${r.err.name} (${r.err.code}): ${r.err.message}` : 'resolved');
  }

  // abort() rejects pending work with ABORTED: rank 1 issues an all-reduce
  // that rank 0 never joins, then aborts it.
  if (rank === 1) {
    check.begin('abort() with work pending');
    const w = forAbort.allReduce(new Float32Array(1024), { timeoutMs: 20000 });
    const queued = forAbort.barrier({ timeoutMs: 20000 });
    await sleep(200);
    check.equal('aborted work not completed before abort()', w.isCompleted(), false);
    const t0 = Date.now();
    forAbort.abort('test abort');
    const a = await rejection(w.wait());
    const b = await rejection(queued.wait());
    const ms = Date.now() - t0;
    check.ok('abort rejects the running allReduce with ABORTED', a.err instanceof CollectiveError && a.err.code === 'ABORTED', a.err ? `${a.err.name} (${a.err.code}): ${a.err.message}` : 'resolved');
    check.ok('abort rejects the queued barrier with ABORTED', b.err instanceof CollectiveError && b.err.code === 'ABORTED', b.err ? `${b.err.name} (${b.err.code}): ${b.err.message}` : 'resolved');
    check.ok('abort rejects at once', ms < 1000, `took ${ms} ms`);
    check.equal('isFailed after abort', w.isFailed(), true);
    check.equal('destroyed after abort', forAbort.destroyed, true);
    try {
      forAbort.allReduce(new Float32Array(4)).catch(() => {});
      check.fail('allReduce after abort', 'did not throw');
    } catch (err) {
      check.ok('allReduce after abort throws ABORTED', err instanceof CollectiveError && err.code === 'ABORTED', `threw ${err.name} (${err.code}): ${err.message}`);
    }
  }

  // A per-call timeout on a collective the peer never joins rejects with TIMEOUT.
  if (rank === 1) {
    check.begin('a per-call timeout');
    const r = await rejection(forTimeout.allReduce(new Float32Array(1024), { timeoutMs: 1000 }).wait());
    check.ok('per-call timeout rejects with TIMEOUT', r.err instanceof CollectiveError && r.err.code === 'TIMEOUT', r.err ? `${r.err.name} (${r.err.code}): ${r.err.message}` : 'resolved');
    check.ok('per-call timeout of 1 s fires within 1-5 s', r.ms >= 900 && r.ms <= 5000, `after ${r.ms} ms`);
    if (r.err) {
      check.equal('TIMEOUT error: operation', r.err.operation, 'allReduce');
      check.equal('TIMEOUT error: rank', r.err.rank, 1);
      // The stack is the caller's, captured when the call was made.
      check.ok('TIMEOUT error: stack shows the call site', /workers[\\/]async\.js/.test(r.err.stack), r.err.stack);
    }
  }

  check.report();
  // Rank 0 stays until rank 1 is done, so that rank 1 sees an absent peer,
  // not a lost one.
  await settle('final barrier', world.barrier({ timeoutMs: 30000 }));
  await world.destroy();
}

run(main);
