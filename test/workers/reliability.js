'use strict';
// Ranks of the cases in test/80.reliability.test.js. Every rank prints its
// pid first ("pid N") so that the test can check that none is left.
//
//   peer-kill SEED       4 ranks stream all-reduces; one rank, chosen by SEED,
//                        SIGKILLs itself after a seeded number of calls. The
//                        others check that every pending and later Work
//                        rejects with PEER_LOST or TIMEOUT within the timeout
//                        + 5 s, naming the lost rank when they name one (or
//                        with ABORTED naming that failure, once it broke the
//                        communicator).
//   stream-kill SEED     as peer-kill, under the launcher: survivors keep
//                        streaming until the launcher stops them.
//   missing TIMEOUT_MS   rank 2 of 3 never calls an all-reduce; the others
//                        must reject with TIMEOUT at TIMEOUT_MS, not later,
//                        and every later call at once with ABORTED.
//   mismatch             (COLLECTIVES_DEBUG=detail) ranks call different
//                        collectives; every rank rejects with MISMATCH, and
//                        valid calls afterwards give exact results.
//   no-debug-mismatch    the same mistake without debug mode: every rank
//                        rejects (TIMEOUT) instead of mixing data.
//   count-mismatch       ranks pass different counts without debug mode:
//                        all-to-all(v) rejects with MISMATCH on every rank,
//                        all-reduce with MISMATCH (or PEER_LOST on the
//                        sender), instead of aborting the process.
//   transfer             a pending operation's buffer is transferred with
//                        postMessage; a detached buffer is refused.
//
// RELIABILITY_CASES in test/80.reliability.test.js lists each mode's cases;
// the killed rank, and every rank under stream-kill, report none.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { MessageChannel } = require('node:worker_threads');
const { init, CollectiveError } = require('../../dist');
const { Checker, run, settle, sleep, outcome, show } = require('../helpers/worker');

const MODE = process.argv[2];
console.log(`pid ${process.pid}`);

/** Park–Miller: small, seeded, the same in every rank. */
function rng(seed) {
  let s = (Number(seed) % 2147483646) + 1;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}


// ---------------------------------------------------------------------------

const KILL_TIMEOUT_MS = 3000;

async function peerKill(underLauncher) {
  const seed = Number(process.argv[3]);
  const random = rng(seed);
  const world = await init();
  const { rank, size } = world;
  const victim = 1 + Math.floor(random() * (size - 1));
  const killAfter = 5 + Math.floor(random() * 40);
  const check = new Checker(rank);
  if (!underLauncher && rank !== victim) check.begin('every call resolves exactly or fails with the lost peer');
  await settle('barrier', world.barrier());
  const n = 1024;
  const inFlight = [];
  let issued = 0;
  let firstFailure = -1;
  const results = [];
  const stream = async () => {
    // Up to 4 all-reduces in flight; stop 2 calls after the first failure.
    for (;;) {
      if (rank === victim && issued === killAfter) process.kill(process.pid, 'SIGKILL');
      if (firstFailure >= 0 && issued >= firstFailure + 2 && !underLauncher) break;
      if (issued >= 5000) break;
      const buf = new Float32Array(n).fill(rank + 1);
      const index = issued++;
      const t0 = Date.now();
      const p = outcome(world.allReduce(buf, { timeoutMs: KILL_TIMEOUT_MS })).then((r) => {
        if (!r.ok && firstFailure < 0) firstFailure = issued;
        results.push({ index, ms: Date.now() - t0, r, buf, afterFailure: firstFailure >= 0 && index >= firstFailure });
      });
      inFlight.push(p);
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
  };
  await stream();
  if (underLauncher) return;
  const want = (size * (size + 1)) / 2;
  let failed = 0;
  let named = 0;
  let peerLost = 0;
  let aborted = 0;
  for (const { index, ms, r, buf, afterFailure } of results) {
    if (r.ok) {
      check.ok(`call ${index} resolved after the first failure`, !afterFailure, show(r));
      check.ok(`call ${index} has the exact sum`, buf.every((v) => v === want), `got ${buf[0]}`);
      continue;
    }
    const e = r.err;
    check.ok(`call ${index} rejects with a CollectiveError`, e instanceof CollectiveError, show(r));
    if (e.code === 'ABORTED') {
      // Queued behind the call that broke the communicator.
      aborted++;
      check.ok(`call ${index}: ABORTED names what broke the communicator`, /broken by a (PEER_LOST|TIMEOUT) in allReduce #\d+/.test(e.message), show(r));
      check.ok(`call ${index}: ABORTED settles within the timeout + 5 s`, ms <= KILL_TIMEOUT_MS + 5000, show(r));
      continue;
    }
    failed++;
    check.ok(`call ${index} rejects with PEER_LOST or TIMEOUT`, e.code === 'PEER_LOST' || e.code === 'TIMEOUT', show(r));
    check.ok(`call ${index} settles within the timeout + 5 s`, ms <= KILL_TIMEOUT_MS + 5000, show(r));
    if (e.code === 'PEER_LOST') {
      peerLost++;
      // Addresses of peers that connected here are read from /proc/net/tcp.
      if (process.platform === 'linux') check.ok(`call ${index}: PEER_LOST names a rank`, e.peerRank !== undefined, show(r));
    }
    if (e.peerRank !== undefined) {
      named++;
      check.equal(`call ${index} names the lost rank`, e.peerRank, victim);
    }
  }
  check.ok('some calls failed after the kill', failed > 0, `${results.length} calls, none failed`);
  console.log(`rank ${rank}: victim ${victim} after ${killAfter} calls; ${results.length} calls, ${failed} failed (${peerLost} PEER_LOST, ${failed - peerLost} TIMEOUT), ${named} named rank ${victim}; ${aborted} ABORTED behind them`);
  await survivorsDone(rank, size - 1);
  world.abort();
  check.report();
}

/**
 * Waits (at most 10 s) until every survivor has checked its calls: a
 * survivor that left earlier would be a lost peer too, and the others would
 * rightly name it instead of the killed rank.
 */
async function survivorsDone(rank, survivors) {
  const dir = path.join(os.tmpdir(), `collectives-${process.env.COLLECTIVES_RUN_ID}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `done-${rank}`), '');
  for (let i = 0; i < 100 && fs.readdirSync(dir).length < survivors; i++) await sleep(100);
  if (rank === 0) setTimeout(() => fs.rmSync(dir, { recursive: true, force: true }), 500).unref();
}

// ---------------------------------------------------------------------------

async function missing() {
  const timeoutMs = Number(process.argv[3]);
  const world = await init();
  const { rank } = world;
  const check = new Checker(rank);
  check.begin(rank === 2 ? 'never calls' : 'the all-reduce a rank never joins');
  await settle('barrier', world.barrier());
  if (rank === 2) {
    // Never calls: waits until the others have given up, then leaves.
    await sleep(timeoutMs + 1500);
    check.report();
    process.exit(0);
  }
  const r = await outcome(world.allReduce(new Float32Array(256), { timeoutMs }));
  check.ok('the all-reduce rejects with TIMEOUT', !r.ok && r.err instanceof CollectiveError && r.err.code === 'TIMEOUT', show(r));
  check.ok(`it rejects no earlier than the ${timeoutMs} ms timeout`, r.ms >= timeoutMs - 20, show(r));
  check.ok(`it rejects within 1.5 s after the ${timeoutMs} ms timeout`, r.ms <= timeoutMs + 1500, show(r));
  console.log(`rank ${rank}: missing call: ${show(r)}`);
  // Gloo has closed the pairs of the call that timed out: every later call fails at once.
  for (const [name, call] of [['allReduce', () => world.allReduce(new Float32Array(4))], ['barrier with a timeoutMs', () => world.barrier({ timeoutMs })]]) {
    const next = await outcome(call());
    check.ok(`${name} after the TIMEOUT rejects with ABORTED`, !next.ok && next.err instanceof CollectiveError && next.err.code === 'ABORTED', show(next));
    check.ok(`${name} after the TIMEOUT names the call that broke it`, !next.ok && /broken by a TIMEOUT in allReduce #2; create a new one/.test(next.err.message), show(next));
    check.ok(`${name} after the TIMEOUT fails at once`, next.ms < 200, show(next));
  }
  world.abort();
  check.report();
}

// ---------------------------------------------------------------------------

/** Each case: what every rank calls; `rank` picks the odd one out. */
const MISMATCHES = [
  ['operation', (w, r) => (r === 1 ? w.broadcast(new Float32Array(1024), { root: 0 }) : w.allReduce(new Float32Array(1024)))],
  ['dtype', (w, r) => w.allReduce(r === 2 ? new Float64Array(64) : new Float32Array(64))],
  ['count', (w, r) => w.allReduce(new Int32Array(r === 0 ? 16 : 8))],
  ['root', (w, r) => w.broadcast(new Uint8Array(32), { root: r === 1 ? 1 : 0 })],
  ['reduce op', (w, r) => w.allReduce(new Float32Array(8), { op: r === 2 ? 'max' : 'sum' })],
  ['reduce root', (w, r) => w.reduce(new Float32Array(8), { root: r === 0 ? 2 : 0 })],
  ['allGather count', (w, r) => w.allGather(new Float32Array(r + 1), new Float32Array((r + 1) * w.size))],
  ['barrier against all-reduce', (w, r) => (r === 0 ? w.barrier() : w.allReduce(new Float32Array(4)))],
  ['quantized against plain', (w, r) => (r === 1 ? w.allReduce(new Float32Array(64)) : w.allReduceQuantized(new Float32Array(64)))],
  ['quantized format', (w, r) => w.allReduceQuantized(new Float32Array(64), { format: r === 2 ? 'int4' : 'int8' })],
  ['quantized block size', (w, r) => w.reduceScatterQuantized(new Float32Array(8 * w.size), new Float32Array(8), { blockSize: r === 0 ? 64 : 256 })],
];

async function exact(world, check, name) {
  const { rank, size } = world;
  const buf = new Float32Array(100).map((_, i) => i + rank);
  await settle(name, world.allReduce(buf));
  check.ok(`${name}: exact all-reduce`, buf.every((v, i) => v === size * i + (size * (size - 1)) / 2), `got ${buf.slice(0, 4)}`);
}

async function mismatch() {
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  check.begin('before any mismatch');
  await exact(world, check, 'before any mismatch');
  for (const [name, call] of MISMATCHES) {
    check.begin(`${name} mismatch`);
    const r = await outcome(call(world, rank));
    // An all-reduce has no size exchange (it would cost every call a round):
    // the rank that receives too much says MISMATCH, its peer sees the pairs close.
    const codes = name === 'allReduce' ? ['MISMATCH', 'PEER_LOST'] : ['MISMATCH'];
    check.ok(`${name}: rejects with ${codes.join(' or ')}`, !r.ok && r.err instanceof CollectiveError && codes.includes(r.err.code), show(r));
    if (!r.ok) {
      for (let k = 0; k < size; k++) {
        check.ok(`${name}: the message names rank ${k}'s call`, new RegExp(`ranks? [0-9,]*\\b${k}\\b[0-9,]* called \\w+\\(`).test(r.err.message), r.err.message);
      }
      if (name === 'operation' && rank === 0) console.log(`rank 0: mismatch message: ${r.err.message}`);
    }
    await exact(world, check, `after the ${name} mismatch`);
  }
  // Calls whose arguments legitimately differ between ranks still pass.
  check.begin('allToAllV with per-rank counts');
  const inSplits = Array.from({ length: size }, (_, k) => (rank + k) % 3);
  const outSplits = Array.from({ length: size }, (_, k) => (k + rank) % 3);
  const input = new Int32Array(inSplits.reduce((a, b) => a + b, 0)).fill(rank);
  const output = new Int32Array(outSplits.reduce((a, b) => a + b, 0));
  await settle('allToAllV with per-rank counts', world.allToAllV(input, inSplits, output, outSplits));
  let at = 0;
  let good = true;
  for (let k = 0; k < size; k++) for (let j = 0; j < outSplits[k]; j++) good = good && output[at++] === k;
  check.ok('allToAllV in detail mode gives right results', good, `got ${output}`);
  check.begin('a subgroup in detail mode');
  const sub = await settle('split by parity', world.split(rank % 2));
  const sb = new Float32Array(4).fill(rank);
  await settle('subgroup all-reduce', sub.allReduce(sb));
  const members = [...Array(size).keys()].filter((k) => k % 2 === rank % 2);
  check.equal('subgroup all-reduce in detail mode', sb[0], members.reduce((a, b) => a + b, 0));
  await settle('destroy the subgroup', sub.destroy());
  check.report();
  await settle('destroy', world.destroy());
}

async function noDebugMismatch() {
  const world = await init();
  const { rank } = world;
  const check = new Checker(rank);
  check.begin('a mismatched call without debug mode');
  const buf = new Float32Array(1024).fill(7);
  const r = await outcome(rank === 1 ? world.broadcast(buf, { root: 0, timeoutMs: 2000 }) : world.allReduce(buf, { timeoutMs: 2000 }));
  check.ok('a mismatched call without debug mode rejects', !r.ok && r.err instanceof CollectiveError, show(r));
  check.ok('the buffer is left as it was (no data mixed in)', buf.every((v) => v === 7), `got ${buf.slice(0, 4)}`);
  console.log(`rank ${rank}: no-debug mismatch: ${show(r)}`);
  world.abort();
  check.report();
}

/**
 * Count mismatches without debug mode, each on a fresh communicator (a
 * failed call breaks one): Gloo aborted the process on an all-to-all whose
 * sizes differ, so the ranks exchange the sizes first.
 */
const COUNT_MISMATCHES = [
  ['allToAll', (w, r) => w.allToAll(new Float32Array(r === 0 ? 4 * w.size : 8 * w.size), new Float32Array(r === 0 ? 4 * w.size : 8 * w.size))],
  ['allToAll with a timeoutMs', (w, r) => w.allToAll(new Int32Array(r === 0 ? 2 : 4), new Int32Array(r === 0 ? 2 : 4), { timeoutMs: 3000 })],
  ['allToAllV', (w, r) => w.allToAllV(new Int32Array(r === 0 ? 4 : 2), r === 0 ? [2, 2] : [1, 1], new Int32Array(4), [2, 2])],
  ['allReduce', (w, r) => w.allReduce(new Float32Array(r === 0 ? 16 : 8))],
];

async function countMismatch() {
  let check;
  for (const [name, call] of COUNT_MISMATCHES) {
    const world = await init({ timeoutMs: 3000 });
    if (!check) check = new Checker(world.rank);
    check.begin(`${name} count mismatch without debug mode`);
    const r = await outcome(call(world, world.rank));
    // An all-reduce has no size exchange (it would cost every call a round):
    // the rank that receives too much says MISMATCH, its peer sees the pairs close.
    const codes = name === 'allReduce' ? ['MISMATCH', 'PEER_LOST'] : ['MISMATCH'];
    check.ok(`${name}: rejects with ${codes.join(' or ')}`, !r.ok && r.err instanceof CollectiveError && codes.includes(r.err.code), show(r));
    console.log(`rank ${world.rank}: ${name} count mismatch: ${show(r)}`);
    world.abort();
  }
  check.report();
}

// ---------------------------------------------------------------------------

async function transfer() {
  const world = await init();
  const { rank } = world;
  const check = new Checker(rank);
  check.begin('a pending buffer posted to another thread');
  const { port1, port2 } = new MessageChannel();
  let received = 0;
  port2.on('message', () => received++);
  const n = 1 << 16;
  const buf = new Float32Array(n).fill(rank + 1);
  if (rank === 1) await sleep(300); // rank 0's call stays pending meanwhile
  const work = world.allReduce(buf);
  let transferred = 'copied';
  try {
    port1.postMessage(buf, [buf.buffer]);
  } catch (err) {
    transferred = `refused (${err.name})`;
  }
  check.equal('the pending buffer is not detached by postMessage', buf.length, n);
  await settle('allReduce whose buffer was posted', work);
  check.ok('its result is exact', buf.every((v) => v === 3), `got ${buf[0]}`);

  check.begin('a detached buffer');
  const gone = new Float32Array(16);
  port1.postMessage(gone, [gone.buffer]);
  check.equal('a fresh buffer can still be transferred', gone.length, 0);
  let err;
  try {
    world.allReduce(gone);
  } catch (e) {
    err = e;
  }
  check.ok('a detached buffer is refused with a TypeError', err instanceof TypeError && err.code === 'INVALID_ARGUMENT', String(err));
  check.ok('the refusal says the buffer is detached', /detached|transferred/.test(String(err && err.message)), String(err));
  await sleep(50);
  port1.close();
  console.log(`rank ${rank}: transfer of a pending buffer: ${transferred}; ${received} messages arrived`);
  check.report();
  await settle('destroy', world.destroy());
}

const MODES = {
  'peer-kill': () => peerKill(false),
  'stream-kill': () => peerKill(true),
  missing,
  mismatch,
  'no-debug-mismatch': noDebugMismatch,
  'count-mismatch': countMismatch,
  transfer,
};

if (!MODES[MODE]) {
  console.error(`unknown mode ${MODE}`);
  process.exit(2);
}
run(MODES[MODE]);
