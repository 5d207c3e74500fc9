'use strict';
// One rank (of 2) of the kill-one-rank case in test/30.async.test.js: rank 1
// is SIGKILLed while rank 0 waits for it inside an all-reduce. Rank 0 must
// learn of it with PEER_LOST naming rank 1 long before its timeout, and still
// shut down. The first argument picks the pairs the all-reduce runs on:
//   per-call   a per-call timeoutMs, which selects Gloo's asynchronous pairs
//   default    no per-call timeoutMs: the synchronous pairs (the default)
// Later calls fail at once with ABORTED naming the failure that broke it.

const { init, CollectiveError } = require('../../dist');
const { Checker, run, settle, sleep, outcome, show } = require('../helpers/worker');


const MODE = process.argv[2] ?? 'per-call';

async function main() {
  const world = await init();
  const { rank } = world;
  const check = new Checker(rank);
  await settle('barrier', world.barrier());

  // Rank 1, the victim, reports nothing: the test sees its SIGKILL.

  if (rank === 1) {
    await sleep(300);
    process.kill(process.pid, 'SIGKILL');
    return;
  }

  check.begin('a killed peer fails the allReduce with PEER_LOST');
  const options = MODE === 'per-call' ? { timeoutMs: 20000 } : {};
  const r = await outcome(world.allReduce(new Float32Array(MODE === 'per-call' ? 1 << 16 : 1024), options));
  check.ok('allReduce with a killed peer rejects with PEER_LOST', r.err instanceof CollectiveError && r.err.code === 'PEER_LOST', show(r));
  check.ok('the loss is reported well before the 20 s timeout', r.ms < 10000, show(r));
  check.equal('err.peerRank names the killed rank', r.err && r.err.peerRank, 1);
  check.ok('the message names the killed rank', /\brank 1\b/.test(r.err && r.err.message), show(r));

  check.begin('the broken communicator');
  const next = await outcome(world.barrier(options));
  check.ok('the next call on the broken communicator fails too', next.err instanceof CollectiveError, show(next));
  check.ok('the next call fails fast', next.ms < 5000, show(next));
  check.equal('the next call fails with ABORTED', next.err && next.err.code, 'ABORTED');
  check.ok('the next call names what broke the communicator', /broken by a PEER_LOST in allReduce/.test(next.err && next.err.message), show(next));

  const t0 = Date.now();
  await settle('destroy after a lost peer', world.destroy());
  check.ok('destroy after a lost peer returns promptly', Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  check.report();
}

run(main);
