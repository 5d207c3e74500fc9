'use strict';
// One rank (of 2) of the worker-thread case in test/50.lifecycle.test.js.
// The rank's communicator lives in a worker_threads Worker, which inherits the
// launcher's environment. After one all-reduce there, each worker waits
// inside an all-reduce the other rank never matches; rank 0's main thread
// then terminates its worker. Rank 1 must see PEER_LOST or TIMEOUT instead of
// hanging, and rank 0's process must carry on and end by itself. Cases: the
// all-reduce in the worker on both ranks, then what each rank does after the
// terminate.

const { Worker, isMainThread, parentPort } = require('node:worker_threads');
const os = require('node:os');
const fs = require('node:fs');
const path = require('node:path');
const { Checker, run, sleep } = require('../helpers/worker');

const RANK1_TIMEOUT_MS = 3000;

const val = (i, rank) => ((i * 11) % 89) + rank * (i % 3);

// ---------------------------------------------------------------------------
// Inside the worker thread.

async function inWorker() {
  const { init, CollectiveError } = require('../../dist');
  const post = (m) => parentPort.postMessage(m);
  const world = await init();
  const { rank } = world;
  const sub = await world.split(0);

  const n = 4096;
  const buf = new Float32Array(n);
  for (let i = 0; i < n; i++) buf[i] = val(i, rank);
  await world.allReduce(buf);
  let wrong = -1;
  for (let i = 0; i < n; i++) {
    if (buf[i] !== val(i, 0) + val(i, 1)) {
      wrong = i;
      break;
    }
  }
  post({ type: 'first', ok: wrong < 0, detail: wrong < 0 ? '' : `element ${wrong} is ${buf[wrong]}, expected ${val(wrong, 0) + val(wrong, 1)}` });

  if (rank === 0) {
    // Inside Gloo on the world, waiting for a rank 1 that never joins, with
    // a timeout far beyond the test's: only the terminate can end it.
    world.allReduce(new Float32Array(1024), { timeoutMs: 60000 }).catch(() => {});
    world.barrier({ timeoutMs: 60000 }).catch(() => {});
    post({ type: 'pending' });
    return;
  }

  // Rank 1 waits on the subgroup, whose other member is rank 0's worker.
  const t0 = Date.now();
  let outcome;
  try {
    await sub.allReduce(new Float32Array(1024), { timeoutMs: RANK1_TIMEOUT_MS });
    outcome = { resolved: true, ms: Date.now() - t0 };
  } catch (err) {
    outcome = {
      resolved: false,
      isCollectiveError: err instanceof CollectiveError,
      code: err && err.code,
      message: String(err && err.message),
      ms: Date.now() - t0,
    };
  }
  post({ type: 'outcome', ...outcome });
  // The communicators are broken; destroy() must still return.
  const t1 = Date.now();
  await Promise.allSettled([sub.destroy(), world.destroy()]);
  post({ type: 'destroyed', ms: Date.now() - t1 });
}

// ---------------------------------------------------------------------------
// On the rank's main thread.

function within(ms, promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function inMain() {
  const rank = Number(process.env.RANK);
  const check = new Checker(rank);
  const worker = new Worker(__filename);
  const messages = [];
  let wake = () => {};
  worker.on('message', (m) => {
    messages.push(m);
    wake();
  });
  let workerError = null;
  worker.on('error', (err) => {
    workerError = err;
    wake();
  });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const next = async (type, ms) => {
    const t0 = Date.now();
    for (;;) {
      const i = messages.findIndex((m) => m.type === type);
      if (i >= 0) return messages.splice(i, 1)[0];
      if (workerError) throw new Error(`the worker failed before sending "${type}": ${workerError.stack}`);
      if (Date.now() - t0 > ms) throw new Error(`no "${type}" message from the worker within ${ms} ms`);
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  };

  check.begin('allReduce in a worker thread');
  const first = await next('first', 20000);
  check.ok('allReduce in a worker thread', first.ok, first.detail);

  if (rank === 0) {
    check.begin('the process after terminate() mid-collective');
    await next('pending', 5000);
    // Give rank 1 time to be inside its all-reduce too.
    await sleep(300);
    const t0 = Date.now();
    const code = await within(10000, worker.terminate(), 'worker.terminate() with an all-reduce inside Gloo');
    console.log(`terminate() returned ${code} after ${Date.now() - t0} ms`);
    // The main thread goes on: timers fire, and the addon still works here,
    // with a communicator of its own that meets through a file store.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await sleep(200);
    clearInterval(timer);
    check.ok('timers after terminate()', ticks >= 5, `the main thread ran only ${ticks} timer ticks of 10 ms in 200 ms after terminate()`);
    const { init } = require('../../dist');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-wt-'));
    try {
      const solo = await init({ rank: 0, worldSize: 1, storePath: dir, timeoutMs: 10000 });
      const b = Float32Array.of(1, 2, 3);
      await solo.allReduce(b);
      check.equal('1-rank allReduce on the main thread after terminate()', b.join(), '1,2,3');
      await solo.destroy();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    check.begin('a peer of the terminated worker');
    const o = await next('outcome', RANK1_TIMEOUT_MS + 10000);
    const how = o.resolved ? `resolved after ${o.ms} ms` : `${o.code} after ${o.ms} ms: ${o.message}`;
    console.log(`rank 1's all-reduce with a terminated peer: ${how}`);
    const rejected = !o.resolved && o.isCollectiveError && ['PEER_LOST', 'TIMEOUT'].includes(o.code);
    check.ok('rejects with PEER_LOST or TIMEOUT', rejected, `rank 1's all-reduce should reject with a CollectiveError PEER_LOST or TIMEOUT; it ${how}`);
    if (rejected) check.ok('rejects in time', o.ms <= RANK1_TIMEOUT_MS + 3000, `rank 1's all-reduce took ${o.ms} ms to fail with a ${RANK1_TIMEOUT_MS} ms timeout`);
    const d = await next('destroyed', 10000);
    check.ok('destroy() of the broken communicators', d.ms <= 5000, `took ${d.ms} ms`);
    const code = await within(10000, exited, 'the worker ending on its own');
    check.equal("rank 1's worker exit code", code, 0);
  }

  check.ok('the worker raised nothing', !workerError, `the worker raised: ${workerError && workerError.stack}`);
  check.report();
}

if (isMainThread) {
  run(inMain);
} else {
  inWorker().catch((err) => {
    // Reported to the main thread through the 'error' event.
    throw err;
  });
}
