'use strict';
// Ranks of the re-initialisation cases in test/50.lifecycle.test.js: new
// communicators in a live process, as torch allows init_process_group()
// after destroy_process_group(), and as fault-tolerant training needs.
//   again [LAG]   init, all-reduce, destroy, three times over; rank 0
//                 destroys LAG ms after the others (they re-join meanwhile)
//   side-by-side  two communicators from two init() calls, used interleaved
//   own-store     (spawnRanks) like side-by-side, each init() with its own
//                 store port, rank 0 hosting both stores
//   die-in-join   (spawnRanks) rank 0 publishes its address and dies inside
//                 init(); the others must give up within their timeoutMs
// REINIT_CASES in test/50.lifecycle.test.js lists each mode's cases.

const { init } = require('../../dist');
const { Checker, run, settle, sleep } = require('../helpers/worker');

const MODE = process.argv[2];
const TIMEOUT_MS = 5000;

async function exact(check, name, comm, seed) {
  const { rank, size } = comm;
  const buf = new Float32Array(300).map((_, i) => i + rank + seed);
  await settle(name, comm.allReduce(buf));
  const want = (i) => size * (i + seed) + (size * (size - 1)) / 2;
  check.ok(`${name}: exact sum`, buf.every((v, i) => v === want(i)), `got ${buf.slice(0, 4)}`);
  // Large enough for the asynchronous pairs as well as the synchronous ones.
  const big = new Float32Array(1 << 18).fill(rank + 1);
  await settle(`${name} (large)`, comm.allReduce(big, { timeoutMs: TIMEOUT_MS + 1 }));
  check.ok(`${name}: exact large sum`, big.every((v) => v === (size * (size + 1)) / 2), `got ${big[0]}`);
}

async function timed(name, p) {
  const t0 = Date.now();
  const comm = await settle(name, p);
  return { comm, ms: Date.now() - t0 };
}

async function again() {
  const lag = Number(process.argv[3] ?? 0);
  let check;
  for (let g = 0; g < 3; g++) {
    const { comm, ms } = await timed(`init #${g + 1}`, init({ timeoutMs: TIMEOUT_MS }));
    if (!check) check = new Checker(comm.rank);
    check.begin(`init #${g + 1}`);
    check.ok(`init #${g + 1} within the timeout`, ms < TIMEOUT_MS, `took ${ms} ms`);
    await exact(check, `generation ${g + 1}`, comm, g);
    if (comm.rank === 0) await sleep(lag);
    await settle(`destroy #${g + 1}`, comm.destroy());
    console.log(`rank ${comm.rank}: init #${g + 1} took ${ms} ms`);
  }
  check.report();
}

async function sideBySide(ports) {
  const opts = (k) => (ports ? { timeoutMs: TIMEOUT_MS, masterPort: ports[k] } : { timeoutMs: TIMEOUT_MS });
  // Both joins at once: neither may wait for the other.
  const [a, b] = await Promise.all([settle('init a', init(opts(0))), settle('init b', init(opts(1)))]);
  const check = new Checker(a.rank);
  check.begin('two communicators side by side');
  check.equal('same rank', a.rank, b.rank);
  await Promise.all([exact(check, 'a', a, 1), exact(check, 'b', b, 2)]);
  await exact(check, 'a again', a, 3);
  await settle('destroy a', a.destroy());
  check.begin('the second outlives the first');
  await exact(check, 'b after a was destroyed', b, 4);
  await settle('destroy b', b.destroy());
  check.report();
}

async function dieInJoin() {
  const rank = Number(process.env.RANK);
  if (rank === 0) {
    // Long enough to have published its address, and it waits for the others.
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 300);
    await init({ timeoutMs: 60000 });
    return;
  }
  const check = new Checker(rank);
  check.begin('a rank that dies inside init()');
  await sleep(1000);
  const timeoutMs = 2000;
  const t0 = Date.now();
  let err;
  try {
    await init({ timeoutMs });
  } catch (e) {
    err = e;
  }
  const ms = Date.now() - t0;
  const show = `${err ? `${err.code}: ${err.message}` : 'resolved'} after ${ms} ms`;
  check.ok('init rejects with TIMEOUT or PEER_LOST', err && (err.code === 'TIMEOUT' || err.code === 'PEER_LOST'), show);
  check.ok(`init gives up within its ${timeoutMs} ms timeout (+1 s)`, ms <= timeoutMs + 1000, show);
  console.log(`rank ${rank}: die-in-join: ${show}`);
  check.report();
  process.exit();
}

const MODES = {
  'die-in-join': dieInJoin,
  again,
  'side-by-side': () => sideBySide(null),
  'own-store': () => sideBySide(process.argv.slice(3, 5).map(Number)),
};
run(MODES[MODE]);
