'use strict';
// What a failed call's stack shows. Rank 0 makes calls that rank 1 never joins (each times out)
// and prints their stacks as JSON: awaited through wait() in one function, awaited as a
// thenable in another, each the "value" of a case line. Run with COLLECTIVES_CALL_SITES=0 and =1.

const { init } = require('../../dist');

async function stepWaited(comm) {
  await comm.allReduce(new Float32Array(4), { timeoutMs: 300 }).wait();
}

async function stepAwaited(comm) {
  await comm.broadcast(new Float32Array(4), { timeoutMs: 300 });
}

// Below the steps: the test matches the line numbers of their calls.
const { caseLine, run } = require('../helpers/worker');

async function stack(fn, comm) {
  try {
    await fn(comm);
    return 'resolved';
  } catch (e) {
    return { code: e.code, stack: e.stack };
  }
}

run(async () => {
  let badOption;
  try {
    await init({ callSites: 'yes' });
    badOption = 'resolved';
  } catch (e) {
    badOption = { name: e.name, code: e.code, message: e.message };
  }
  const comm = await init();
  if (comm.rank === 0) {
    caseLine({ case: 'badOption', ok: true, rank: 0, value: badOption });
    caseLine({ case: 'waited', ok: true, rank: 0, value: await stack(stepWaited, comm) });
    caseLine({ case: 'awaited', ok: true, rank: 0, value: await stack(stepAwaited, comm) });
  }
  // Rank 1 outlives rank 0's timeouts, so rank 0 sees no lost peer; it reports no case.
  await comm.barrier({ timeoutMs: 30000 }).catch(() => {});
  await comm.destroy().catch(() => {});
});
