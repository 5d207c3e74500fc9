'use strict';
// One rank of the kill-one-rank case of test/47.mpi.test.js, under mpirun
// with the MPI engine: the last rank is SIGKILLed while the others wait for
// it inside an all-reduce. They must fail with PEER_LOST (the engine sees the
// process exit on this host) or TIMEOUT, never hang, and the next call must
// fail at once with ABORTED.

const { init, CollectiveError } = require('../../dist');
const { Checker, run, settle, sleep, outcome, show } = require('../helpers/worker');


run(async () => {
  const world = await init({ engine: 'mpi' });
  const { rank, size } = world;
  const victim = size - 1;
  const check = new Checker(rank);
  await settle('barrier', world.barrier());
  if (rank === victim) {
    await sleep(300);
    process.kill(process.pid, 'SIGKILL');
    return;
  }

  check.begin('a killed peer fails the allReduce');
  const r = await outcome(world.allReduce(new Float32Array(1 << 16), { timeoutMs: 8000 }));
  const code = r.err && r.err.code;
  check.ok('rejects with PEER_LOST or TIMEOUT', r.err instanceof CollectiveError && (code === 'PEER_LOST' || code === 'TIMEOUT'), show(r));
  if (code === 'PEER_LOST') {
    check.equal('err.peerRank names the killed rank', r.err.peerRank, victim);
    check.ok('the loss is reported well before the timeout', r.ms < 5000, show(r));
  }
  check.attach('code', code ?? null);

  check.begin('the broken communicator');
  const next = await outcome(world.barrier({ timeoutMs: 8000 }));
  check.equal('the next call fails with ABORTED', next.err && next.err.code, 'ABORTED');
  check.ok('the next call fails fast', next.ms < 2000, show(next));
  check.report();
  // A survivor that left at once would look lost to a survivor still
  // probing: stay until every one has seen the killed rank go.
  await sleep(1000);
  // MPI cannot finalize with a dead rank: the process ends without it.
  process.exit(0);
});
