'use strict';
// Ranks (of 2) of test/32.inline.test.js: the inline path, where a small call on a
// communicator with nothing in flight runs on the calling thread. Which path a call took is
// read from comm.stats() (`inline`), and from its buffer, which an inline call has already
// reduced when the call returns. The first argument picks the mode:
//   main       idle small calls run inline; larger ones, calls with their own timeoutMs and
//              calls behind queued or pending work are queued, and complete in issue order;
//              a second communicator turns the default off; a peer that never calls fails
//              the inline call with TIMEOUT at the timeout, and the communicator stays broken.
//   mismatch   (COLLECTIVES_DEBUG=detail) ranks call different collectives: MISMATCH, with
//              the same message as on a communicator whose inline path is off.
//   peer-lost  rank 1 SIGKILLs itself while rank 0 waits in an all-reduce; rank 0 reports
//              the error (PEER_LOST naming rank 1) for the test to compare with the queued run.

const { init, CollectiveError } = require('../../dist');
const { DEFAULT_INLINE_BYTES } = require('../../dist/core/tuning');
const { Checker, caseLine, run, settle, sleep, outcome, show } = require('../helpers/worker');

const MODE = process.argv[2];
const TIMEOUT_MS = 3000;

/** Small integers, exact in any summation order. */
function ramp(n, rank, seed) {
  return Float32Array.from({ length: n }, (_, i) => ((i * 7 + seed) % 31) + rank * (i % 5));
}
/** The sum of ramp(n, r, seed) over 2 ranks. */
function rampSum(n, seed) {
  return Float32Array.from({ length: n }, (_, i) => 2 * ((i * 7 + seed) % 31) + (i % 5));
}

const inlineOf = (comm, op) => (comm.stats().operations[op] ?? { inline: 0 }).inline;


async function main() {
  const world = await init({ timeoutMs: TIMEOUT_MS });
  const { rank, size } = world;
  if (size !== 2) throw new Error(`this worker needs 2 ranks, got ${size}`);
  const check = new Checker(rank);
  const peer = 1 - rank;

  check.begin('idle small calls run inline');
  check.equal('comm.tuning.inlineBytes is the default', world.tuning.inlineBytes, DEFAULT_INLINE_BYTES);
  world.resetStats();
  {
    const buf = ramp(1024, rank, 1);
    const w = world.allReduce(buf);
    // Already reduced when the call returns: nothing was handed to another thread.
    check.same('allReduce: the result is there when the call returns', buf, rampSum(1024, 1));
    check.ok('allReduce: resolves with the buffer', (await w) === buf, 'another value');
    check.equal('allReduce ran inline', inlineOf(world, 'allReduce'), 1);

    const input = Float32Array.from({ length: 8 }, (_, i) => i + 10 * rank);
    const out = new Float32Array(4);
    world.reduceScatter(input, out);
    check.same('reduceScatter: the result is there when the call returns', out, Float32Array.from({ length: 4 }, (_, i) => 2 * (i + 4 * rank) + 10));
    const gathered = new Int32Array(6);
    world.allGather(Int32Array.of(rank, rank + 5, -rank), gathered);
    check.same('allGather: the result is there when the call returns', gathered, Int32Array.of(0, 5, 0, 1, 6, -1));
    const b = rank === 1 ? Float64Array.of(1.5, -2, 3) : new Float64Array(3);
    world.broadcast(b, { root: 1 });
    check.same('broadcast: the result is there when the call returns', b, Float64Array.of(1.5, -2, 3));
    const bar = world.barrier();
    await bar;
    const s = world.stats().operations;
    for (const op of ['reduceScatter', 'allGather', 'broadcast', 'barrier']) check.equal(`${op} ran inline`, s[op] && s[op].inline, 1);
    check.equal('total inline', world.stats().total.inline, 5);
    check.equal('nothing pending', world.pending, 0);
  }

  check.begin('larger calls, own timeouts and asynchronous-pair calls are queued');
  world.resetStats();
  {
    // One element over the threshold.
    const n = DEFAULT_INLINE_BYTES / 4 + 1;
    const big = ramp(n, rank, 2);
    await settle('allReduce above the threshold', world.allReduce(big));
    check.same('above the threshold: exact', big, rampSum(n, 2));
    const own = ramp(16, rank, 3);
    await settle('allReduce with its own timeoutMs', world.allReduce(own, { timeoutMs: TIMEOUT_MS - 1 }));
    check.same('own timeoutMs: exact', own, rampSum(16, 3));
    const a2a = new Int32Array(2);
    await settle('allToAll', world.allToAll(Int32Array.of(10 * rank, 10 * rank + 1), a2a));
    check.same('allToAll (asynchronous pairs): exact', a2a, Int32Array.of(rank, 10 + rank));
    check.equal('none of them ran inline', world.stats().total.inline, 0);
    check.equal('all of them counted', world.stats().total.calls, 3);
  }

  check.begin('an inline-eligible call after queued ones waits for them');
  world.resetStats();
  {
    const sizes = [DEFAULT_INLINE_BYTES, 4, 256, DEFAULT_INLINE_BYTES, 3];
    const bufs = sizes.map((n, k) => ramp(n, rank, 10 + k));
    const order = [];
    const works = bufs.map((b, k) => {
      const w = world.allReduce(b);
      w.then(() => order.push(k));
      return w;
    });
    await Promise.all(works.map((w, k) => settle(`behind a queued call #${k}`, w)));
    check.equal('completion order', order.join(','), '0,1,2,3,4');
    bufs.forEach((b, k) => check.same(`behind a queued call #${k} (n=${sizes[k]}): exact`, b, rampSum(sizes[k], 10 + k)));
    check.equal('none ran inline', inlineOf(world, 'allReduce'), 0);

    // Back to back on an idle communicator: each runs inline, in issue order.
    world.resetStats();
    const small = Array.from({ length: 16 }, (_, k) => ramp(1 + k, rank, 20 + k));
    const done = [];
    const ws = small.map((b, k) => world.allReduce(b).then(() => done.push(k)));
    await Promise.all(ws);
    check.equal('16 idle calls: completion order', done.join(','), [...Array(16).keys()].join(','));
    small.forEach((b, k) => check.same(`idle call #${k}: exact`, b, rampSum(1 + k, 20 + k)));
    check.equal('16 idle calls ran inline', inlineOf(world, 'allReduce'), 16);
  }

  check.begin('a pending receive keeps the next call queued');
  world.resetStats();
  {
    const buf = ramp(64, rank, 40);
    if (rank === 0) {
      const got = new Float32Array(8);
      // The receive completes only after the peer's all-reduce (its send comes after it), so
      // the all-reduce is issued while the receive is pending. The two complete on different
      // threads, in no set order.
      const r = world.recv(got, peer);
      const a = world.allReduce(buf);
      await Promise.all([settle('recv', r), settle('allReduce behind a recv', a)]);
      check.same('the received message', got, Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8));
      check.equal('the allReduce behind a pending recv did not run inline', inlineOf(world, 'allReduce'), 0);
    } else {
      await settle('allReduce', world.allReduce(buf));
      check.equal('on an idle communicator it ran inline', inlineOf(world, 'allReduce'), 1);
      await settle('send', world.send(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8), peer));
    }
    check.same('exact', buf, rampSum(64, 40));
  }

  check.begin('a second communicator turns the default off');
  {
    const child = await settle('split', world.split(0));
    world.resetStats();
    child.resetStats();
    const x = ramp(8, rank, 50);
    await settle('world allReduce beside a child', world.allReduce(x));
    const y = ramp(8, rank, 51);
    await settle('child allReduce', child.allReduce(y));
    check.same('world: exact', x, rampSum(8, 50));
    check.same('child: exact', y, rampSum(8, 51));
    check.equal('world beside a child: queued', inlineOf(world, 'allReduce'), 0);
    check.equal('child beside the world: queued', inlineOf(child, 'allReduce'), 0);
    await settle('child destroy', child.destroy());
    const z = ramp(8, rank, 52);
    await settle('world allReduce alone again', world.allReduce(z));
    check.same('alone again: exact', z, rampSum(8, 52));
    check.equal('alone again: inline', inlineOf(world, 'allReduce'), 1);
  }

  // Last: it breaks the world communicator.
  if (rank === 1) {
    check.begin('waits without calling');
    // Outlives rank 0's timeout, so that rank 0 sees an absent peer, not a lost one.
    await sleep(TIMEOUT_MS + 1500);
    check.report();
    process.exit(0);
  }
  check.begin('a peer that never calls: TIMEOUT, the thread blocked until then');
  world.resetStats();
  {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    // Timed from before the call: an inline call returns only when it is done.
    const t0 = Date.now();
    const r = await outcome(world.allReduce(new Float32Array(16)));
    r.ms = Date.now() - t0;
    const during = ticks;
    clearInterval(timer);
    check.ok('rejects with TIMEOUT', !r.ok && r.err instanceof CollectiveError && r.err.code === 'TIMEOUT', show(r));
    check.ok(`no earlier than the ${TIMEOUT_MS} ms timeout`, r.ms >= TIMEOUT_MS - 50, show(r));
    check.ok(`within 1.5 s after it`, r.ms <= TIMEOUT_MS + 1500, show(r));
    check.equal('it ran inline', inlineOf(world, 'allReduce'), 1);
    // The documented cost: timers do not run while an inline call waits for its peers.
    check.equal('no timer ran while it waited', during, 0);
    for (const [name, call] of [['allReduce', () => world.allReduce(new Float32Array(4))], ['barrier', () => world.barrier()], ['queued barrier', () => world.barrier({ timeoutMs: 1000 })]]) {
      const next = await outcome(call());
      check.ok(`${name} after it: ABORTED naming the TIMEOUT`, !next.ok && next.err.code === 'ABORTED' && /broken by a TIMEOUT in allReduce #\d+; create a new one/.test(next.err.message), show(next));
      check.ok(`${name} after it: at once`, next.ms < 200, show(next));
    }
    world.abort();
    try {
      world.allReduce(new Float32Array(4));
      check.fail('a call after abort()', 'did not throw');
    } catch (err) {
      check.equal('a call after abort() throws ABORTED', err.code, 'ABORTED');
    }
  }
  check.report();
}

async function mismatch() {
  // A given threshold applies even beside another communicator.
  const inline = await init({ gloo: { inlineBytes: 4096 } });
  const queued = await init({ gloo: { inlineBytes: 0 } });
  const { rank } = inline;
  const check = new Checker(rank);
  check.begin('MISMATCH as on the queued path');
  const messages = [];
  for (const comm of [inline, queued]) {
    const call = () => (rank === 1 ? comm.broadcast(new Float32Array(8), { root: 0 }) : comm.allReduce(new Float32Array(8)));
    const r = await outcome(call());
    check.ok('rejects with MISMATCH', !r.ok && r.err instanceof CollectiveError && r.err.code === 'MISMATCH', show(r));
    check.ok("the message names both ranks' calls", !r.ok && /rank 0 called allReduce\(.*rank 1 called broadcast\(/.test(r.err.message), show(r));
    messages.push(r.ok ? '' : `${r.err.code} ${r.err.operation} ${r.err.rank} ${r.err.message}`);
    const buf = ramp(32, rank, 60);
    await settle('a valid call after the mismatch', comm.allReduce(buf));
    check.same('a valid call after the mismatch: exact', buf, rampSum(32, 60));
  }
  check.equal('the same error with and without the inline path', messages[0], messages[1]);
  check.equal('the inline communicator ran both calls inline', inline.stats().total.inline, 2);
  check.equal('the other ran none inline', queued.stats().total.inline, 0);
  check.report();
  await inline.destroy();
  await queued.destroy();
}

async function peerLost() {
  const world = await init();
  const { rank } = world;
  await settle('barrier', world.barrier());
  if (rank === 1) {
    await sleep(300);
    process.kill(process.pid, 'SIGKILL');
    return;
  }
  world.resetStats();
  const r = await outcome(world.allReduce(new Float32Array(1024)));
  const next = await outcome(world.barrier());
  const e = r.err ?? {};
  caseLine({
    case: 'a killed peer',
    ok: !r.ok,
    detail: show(r),
    rank,
    value: { code: e.code, peerRank: e.peerRank, operation: e.operation, message: e.message, ms: r.ms, inline: inlineOf(world, 'allReduce'), next: next.err && { code: next.err.code, message: next.err.message, ms: next.ms } },
  });
  await world.destroy();
}

run({ main, mismatch, 'peer-lost': peerLost }[MODE]);
