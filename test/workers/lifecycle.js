'use strict';
// One rank (of 2) of test/50.lifecycle.test.js. The first argument picks the case:
//   gc             buffers only the library holds survive garbage collection
//   destroy        destroy() with 32 operations pending
//   exit-open      the process ends with the world and a subgroup still open
//   exit-pending   process.exit() while an operation waits inside Gloo
//   soak           20,000 tiny all-reduces: memory and handles stay flat
// Each mode reports a case or two; LIFECYCLE_CASES in test/50.lifecycle.test.js
// lists them.

const { init, CollectiveError } = require('../../dist');
const { Checker, run, settle, sleep } = require('../helpers/worker');

const MODE = process.argv[2];

/** Small integers (at most 102), so that every sum over 2 ranks is exact in every dtype used. */
const val = (i, k, rank) => ((i * 13 + k * 7) % 97) + rank * (i % 7);
const sum2 = (i, k) => val(i, k, 0) + val(i, k, 1);

function filled(Kind, n, f) {
  const a = new Kind(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  return a;
}

function needGc() {
  if (typeof gc !== 'function') {
    throw new Error(`the ${MODE} case needs --expose-gc (the test sets NODE_OPTIONS=--expose-gc); typeof gc is ${typeof gc}`);
  }
}

/** Makes short-lived objects and typed arrays so that collections have something to do. */
function garbage() {
  let keep = 0;
  for (let j = 0; j < 200; j++) {
    const a = new Float64Array(2048);
    a[j] = j;
    const o = { j, s: `g${j}`, arr: new Array(64).fill(j) };
    keep += a[j] + o.arr.length;
  }
  return keep;
}

const describeErr = (err) => (err ? `${err.name} (${err.code}): ${err.message}` : 'no error');

// ---------------------------------------------------------------------------

async function gcCase() {
  needGc();
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  if (size !== 2) throw new Error(`this worker needs 2 ranks, got ${size}`);

  check.begin('operations pending while collecting');
  // Every input below is allocated in the call expression itself, so once the
  // call returns only what the library pinned refers to it. Only the Work is
  // kept; expected values are recomputed from (k, n) at the end.
  const works = [];
  for (let k = 0; k < 200; k++) {
    // A few large ones keep the queue busy while collections run.
    const n = k % 25 === 0 ? 1 << 17 : 1 + ((k * 389) % 3000);
    let work;
    let kind;
    switch (k % 5) {
      case 0: // in place, float32
        kind = 'allReduce f32 in place';
        work = world.allReduce(filled(Float32Array, n, (i) => val(i, k, rank)));
        break;
      case 1: // out of place: the input is held by nobody but the library
        kind = 'allReduce f32 out of place';
        work = world.allReduce(filled(Float32Array, n, (i) => val(i, k, rank)), { output: new Float32Array(n) });
        break;
      case 2:
        kind = 'allReduce f64 in place';
        work = world.allReduce(filled(Float64Array, n, (i) => val(i, k, rank)));
        break;
      case 3:
        kind = 'allReduce f64 out of place';
        work = world.allReduce(filled(Float64Array, n, (i) => val(i, k, rank)), { output: new Float64Array(n) });
        break;
      default: // the input again held only by the library
        kind = 'allGather f32';
        work = world.allGather(filled(Float32Array, n, (i) => val(i, k, rank)), new Float32Array(2 * n));
        break;
    }
    works.push({ k, n, kind, work });
    if (k % 20 === 19) {
      garbage();
      gc();
    }
  }
  check.ok('operations still pending when the collections start', world.pending > 0, `pending ${world.pending}`);
  const pendingAtStart = world.pending;
  for (let round = 0; round < 6; round++) {
    garbage();
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  console.log(`gc: ${pendingAtStart} of 200 pending when collecting began, ${world.pending} after 6 rounds`);

  check.begin('results of the 200 operations');

  for (const { k, n, kind, work } of works) {
    const got = await settle(`#${k} ${kind}`, work);
    let want;
    if (kind.startsWith('allGather')) {
      want = new Float32Array(2 * n);
      for (let r = 0; r < 2; r++) for (let i = 0; i < n; i++) want[r * n + i] = val(i, k, r);
    } else {
      want = filled(kind.includes('f64') ? Float64Array : Float32Array, n, (i) => sum2(i, k));
    }
    check.same(`#${k} ${kind} (n=${n})`, got, want);
    gc();
  }
  check.report();
  await world.destroy();
}

// ---------------------------------------------------------------------------

async function destroyCase() {
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  if (size !== 2) throw new Error(`this worker needs 2 ranks, got ${size}`);

  check.begin('destroy() with 32 pending');
  // 32 operations of several kinds, some large enough to still be queued
  // when destroy() is called.
  const ops = [];
  for (let k = 0; k < 32; k++) {
    const n = k % 8 === 0 ? 1 << 18 : 1 + ((k * 211) % 5000);
    switch (k % 6) {
      case 0: {
        const buf = filled(Float32Array, n, (i) => val(i, k, rank));
        ops.push({ k, what: 'allReduce', work: world.allReduce(buf), want: filled(Float32Array, n, (i) => sum2(i, k)) });
        break;
      }
      case 1: {
        const want = new Float32Array(2 * n);
        for (let r = 0; r < 2; r++) for (let i = 0; i < n; i++) want[r * n + i] = val(i, k, r);
        const work = world.allGather(filled(Float32Array, n, (i) => val(i, k, rank)), new Float32Array(2 * n));
        ops.push({ k, what: 'allGather', work, want });
        break;
      }
      case 2: {
        const root = k % 2;
        const buf = rank === root ? filled(Float64Array, n, (i) => val(i, k, root)) : new Float64Array(n);
        ops.push({ k, what: `broadcast root ${root}`, work: world.broadcast(buf, { root }), want: filled(Float64Array, n, (i) => val(i, k, root)) });
        break;
      }
      case 3: {
        // Block b of the input is reduced and block `rank` is kept.
        const input = filled(Int32Array, 2 * n, (i) => val(i, k, rank));
        const want = filled(Int32Array, n, (i) => sum2(rank * n + i, k));
        ops.push({ k, what: 'reduceScatter', work: world.reduceScatter(input, new Int32Array(n)), want });
        break;
      }
      case 4:
        ops.push({ k, what: 'barrier', work: world.barrier(), want: null });
        break;
      default: {
        // Block r of the input goes to rank r.
        const input = filled(Float32Array, 2 * n, (i) => val(i, k, rank) + 1000 * Math.floor(i / n));
        const want = new Float32Array(2 * n);
        for (let r = 0; r < 2; r++) for (let i = 0; i < n; i++) want[r * n + i] = val(rank * n + i, k, r) + 1000 * rank;
        ops.push({ k, what: 'allToAll', work: world.allToAll(input, new Float32Array(2 * n)), want });
        break;
      }
    }
  }
  check.equal('pending right after issuing 32', world.pending, 32);

  const t0 = Date.now();
  let doneWhenResolved = -1;
  const destroyed = world.destroy().then(() => {
    doneWhenResolved = ops.filter((o) => o.work.isCompleted()).length;
  });
  await settle('destroy() with 32 pending', destroyed);
  console.log(`destroy with 32 pending resolved after ${Date.now() - t0} ms`);
  check.equal('operations completed when destroy() resolved', doneWhenResolved, 32);
  for (const o of ops) {
    check.equal(`#${o.k} ${o.what} did not fail`, o.work.isFailed(), false);
    const got = await settle(`#${o.k} ${o.what}`, o.work);
    if (o.want) check.same(`#${o.k} ${o.what}`, got, o.want);
  }
  check.equal('pending after destroy', world.pending, 0);

  check.begin('a destroyed communicator');
  const t1 = Date.now();
  await settle('second destroy()', world.destroy());
  check.ok('second destroy() resolves at once', Date.now() - t1 < 1000, `took ${Date.now() - t1} ms`);
  try {
    world.barrier().catch(() => {});
    check.fail('barrier after destroy', 'did not throw');
  } catch (err) {
    check.ok('barrier after destroy throws DESTROYED', err instanceof CollectiveError && err.code === 'DESTROYED', describeErr(err));
  }
  check.report();
  // Nothing else is left: the process must now end by itself.
}

// ---------------------------------------------------------------------------

async function exitOpenCase() {
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  if (size !== 2) throw new Error(`this worker needs 2 ranks, got ${size}`);
  check.begin('world and subgroup work, never destroyed');
  const sub = await settle('subgroup', world.subgroup([0, 1]));
  check.ok('subgroup made', sub !== null, 'got null');
  const a = await settle('world allReduce', world.allReduce(filled(Float32Array, 1000, (i) => val(i, 1, rank))));
  check.same('world allReduce', a, filled(Float32Array, 1000, (i) => sum2(i, 1)));
  const b = await settle('subgroup allReduce', sub.allReduce(filled(Float32Array, 1000, (i) => val(i, 2, rank))));
  check.same('subgroup allReduce', b, filled(Float32Array, 1000, (i) => sum2(i, 2)));
  // Both ranks must be done with the pairs before either starts to leave.
  await settle('barrier before leaving', world.barrier());
  check.report();
  // No destroy(): the environment's teardown has to release both communicators.
}

async function exitPendingCase() {
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  if (size !== 2) throw new Error(`this worker needs 2 ranks, got ${size}`);
  check.begin('unmatched calls pending at exit');
  const sub = await settle('subgroup', world.subgroup([0, 1]));
  await settle('barrier', world.barrier());
  // Each rank enters an all-reduce the other never matches (rank 0 on the
  // subgroup, rank 1 on the world), so a thread of each is inside Gloo at
  // exit; a receive nobody sends to waits on the transfer thread beside it.
  const comm = rank === 0 ? sub : world;
  const w = comm.allReduce(new Float32Array(256), { timeoutMs: 60000 });
  const r = comm.recv(new Float32Array(256), 1 - rank, { tag: 77, timeoutMs: 60000 });
  await sleep(200);
  // The peer may already have left (then these failed); they cannot have succeeded.
  check.ok('unmatched allReduce did not succeed', !w.isCompleted() || w.isFailed(), 'it resolved');
  check.ok('unmatched receive did not succeed', !r.isCompleted() || r.isFailed(), 'it resolved');
  check.report();
  process.exit(process.exitCode ?? 0);
}

// ---------------------------------------------------------------------------

// A second argument changes the number of calls, for longer runs by hand.
const CALLS = Number(process.argv[3] ?? 20000);
const WARMUP = 2000;
const WINDOW = 40;
const MiB = 1024 * 1024;

async function soakCase() {
  needGc();
  // This rank's own stdout and stderr are opened on first use and then stay
  // listed; open them now so that only what the library leaves shows up.
  void process.stdout;
  void process.stderr;
  const before = process.getActiveResourcesInfo();
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  if (size !== 2) throw new Error(`this worker needs 2 ranks, got ${size}`);

  check.begin('soak results and rss');
  let bad = 0;
  let firstBad = '';
  let rss0 = 0;
  const t0 = Date.now();
  let tWarm = t0;
  for (let start = 0; start < CALLS; start += WINDOW) {
    const batch = [];
    for (let c = start; c < start + WINDOW; c++) {
      const buf = Float32Array.of(c % 251, rank, (c * 3) % 101, 1);
      batch.push(world.allReduce(buf));
    }
    const res = await Promise.all(batch);
    for (let j = 0; j < res.length; j++) {
      const c = start + j;
      const r = res[j];
      if (r[0] !== 2 * (c % 251) || r[1] !== 1 || r[2] !== 2 * ((c * 3) % 101) || r[3] !== 2) {
        if (bad++ === 0) firstBad = `call ${c}: [${Array.from(r)}]`;
      }
    }
    if (start + WINDOW === WARMUP) {
      gc();
      rss0 = process.memoryUsage().rss;
      tWarm = Date.now();
    }
  }
  const ms = Date.now() - tWarm;
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  const { rss: rss1, heapTotal } = process.memoryUsage();
  const growth = (rss1 - rss0) / MiB;
  console.log(
    `soak: ${CALLS} allReduces of 4 floats, ${WINDOW} in flight; ${CALLS - WARMUP} after warm-up in ${ms} ms ` +
      `(${((ms * 1000) / (CALLS - WARMUP)).toFixed(1)} us per call); rss ${(rss0 / MiB).toFixed(1)} -> ${(rss1 / MiB).toFixed(1)} MiB ` +
      `(V8 heap ${(heapTotal / MiB).toFixed(1)} MiB)`,
  );
  check.equal('wrong results in the soak', bad, 0);
  if (bad) check.fail('first wrong result', firstBad);
  check.ok('rss growth after warm-up under 20 MiB', growth < 20, `grew ${growth.toFixed(1)} MiB (${rss0} -> ${rss1} bytes)`);

  check.begin('active resources after destroy()');
  await settle('destroy after the soak', world.destroy());
  // Let closed handles finish closing before counting them.
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  const after = process.getActiveResourcesInfo();
  check.ok(
    'active resources after destroy() no more than before init()',
    after.length <= before.length,
    `before init: [${before.join(', ')}]; after destroy: [${after.join(', ')}]`,
  );
  check.report();
}

const CASES = {
  gc: gcCase,
  destroy: destroyCase,
  'exit-open': exitOpenCase,
  'exit-pending': exitPendingCase,
  soak: soakCase,
};

if (!CASES[MODE]) {
  console.error(`FATAL unknown case ${JSON.stringify(MODE)}; expected one of ${Object.keys(CASES).join(', ')}`);
  process.exit(2);
}
run(CASES[MODE]);
