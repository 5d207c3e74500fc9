// One rank of `npm run bench:overhead` (started by bench/overhead.js through
// collectives-run): times one operation at each size through the addon, the
// way the raw-Gloo reference times it (warm-up, barrier, a timed run), and
// prints JSON on rank 0. Two timings per size:
//   queued:  all iterations issued at once, then awaited (nccl-tests' way;
//            the queue thread runs them back to back, like the C++ loop);
//   awaited: each call awaited before the next is issued (what one caller
//            waiting on each result sees);
//   inline:  awaited as above, on a second communicator whose inline path
//            takes every size (inlineBytes: the largest), so each call runs
//            on the JavaScript thread (docs/tuning.md#the-inline-path); null
//            where the call is not one the inline path runs (the
//            asynchronous pairs). The first communicator has it off, so
//            queued and awaited are the queue thread's times.
'use strict';

const { init } = require('..');

const [op, sizesArg, itersArg] = process.argv.slice(2);
const sizes = sizesArg.split(',').map(Number);
const iters = itersArg.split(',').map(Number);
const WARMUP = 5;

function buffers(comm, bytes) {
  const n = comm.size;
  const count = bytes / 4;
  switch (op) {
    case 'all_reduce':
      // In place, as the reference runs it.
      return { call: (b) => comm.allReduce(b.in), in: new Float32Array(count).fill(1) };
    case 'reduce_scatter':
      return { call: (b) => comm.reduceScatter(b.in, b.out), in: new Float32Array(count).fill(1), out: new Float32Array(count / n) };
    case 'all_gather':
      return { call: (b) => comm.allGather(b.in, b.out), in: new Float32Array(count / n).fill(1), out: new Float32Array(count) };
    case 'alltoall':
      return { call: (b) => comm.allToAll(b.in, b.out), in: new Float32Array(count).fill(1), out: new Float32Array(count) };
    case 'broadcast':
      return { call: (b) => comm.broadcast(b.out, { root: 0 }), out: new Float32Array(count).fill(1) };
    default:
      throw new Error(`bench/overhead-rank.js: unknown op ${op}`);
  }
}

async function timeQueued(comm, b, n) {
  await comm.barrier();
  const start = process.hrtime.bigint();
  const works = [];
  for (let i = 0; i < n; i++) works.push(b.call(b));
  await Promise.all(works);
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

async function timeAwaited(comm, b, n) {
  await comm.barrier();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await b.call(b);
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

async function main() {
  // A given threshold applies beside another communicator too.
  const comm = await init({ gloo: { inlineBytes: 0 } });
  const fast = await init({ gloo: { inlineBytes: Number.MAX_SAFE_INTEGER } });
  const rows = [];
  for (let s = 0; s < sizes.length; s++) {
    const b = buffers(comm, sizes[s]);
    for (let i = 0; i < WARMUP; i++) await b.call(b);
    const queued = await timeQueued(comm, b, iters[s]);
    const awaited = await timeAwaited(comm, b, iters[s]);
    const f = buffers(fast, sizes[s]);
    for (let i = 0; i < WARMUP; i++) await f.call(f);
    fast.resetStats();
    const inline = await timeAwaited(fast, f, iters[s]);
    const ran = fast.stats().total.inline >= iters[s];
    rows.push({ bytes: sizes[s], algorithm: comm.algorithm(op, sizes[s]), queued, awaited, inline: ran ? inline : null });
  }
  if (comm.rank === 0) process.stdout.write(`${JSON.stringify(rows)}\n`);
  await fast.destroy();
  await comm.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
