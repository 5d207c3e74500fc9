// Per-call latency of allReduce as a user sees it (await one call at a time),
// and the per-call cost when calls are pipelined. A quick look at the core's
// overhead; the nccl-tests-style sweep belongs to collectives-bench.
//
//   node dist/launch/cli.js --nproc-per-node N --master-port 0 bench/call-latency.js
'use strict';

const os = require('node:os');
const { init, versions } = require('..');

const SIZES = [8, 4096, 1 << 20, 16 << 20]; // bytes of float32
const PIPELINED_CALLS = 20000;

function itersFor(bytes) {
  if (bytes >= 16 << 20) return 10;
  if (bytes >= 1 << 20) return 50;
  return 1000;
}

async function timeAwaited(comm, bytes) {
  const buf = new Float32Array(bytes / 4);
  for (let i = 0; i < 5; i++) await comm.allReduce(buf);
  await comm.barrier();
  const iters = itersFor(bytes);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await comm.allReduce(buf);
  return Number(process.hrtime.bigint() - start) / 1000 / iters;
}

async function timePipelined(comm) {
  const buf = new Float32Array(1);
  await comm.barrier();
  const start = process.hrtime.bigint();
  const works = [];
  for (let i = 0; i < PIPELINED_CALLS; i++) works.push(comm.allReduce(buf));
  await Promise.all(works);
  return Number(process.hrtime.bigint() - start) / 1000 / PIPELINED_CALLS;
}

async function main() {
  const comm = await init();
  const n = comm.size;
  const rows = [];
  for (const bytes of SIZES) {
    const us = await timeAwaited(comm, bytes);
    const busbw = ((bytes / (us * 1e-6)) * (2 * (n - 1))) / n / 1e9;
    rows.push({ bytes, us, busbw });
  }
  const pipelined = await timePipelined(comm);
  if (comm.rank === 0) {
    const v = versions();
    const inline = comm.tuning.inlineBytes ? `up to ${comm.tuning.inlineBytes} bytes` : 'off';
    console.log(`# ${n} ranks, ${os.cpus().length} CPUs, Node ${v.node}, Gloo ${v.gloo}, loopback, ring all-reduce, COLLECTIVES_DEBUG=${process.env.COLLECTIVES_DEBUG || "off"}, inline path ${inline} (${comm.stats().total.inline} of ${comm.stats().total.calls} calls inline)`);
    console.log('#   bytes   time(us)  busbw(GB/s)   (rank 0, awaited one call at a time)');
    for (const r of rows) {
      console.log(`${String(r.bytes).padStart(9)} ${r.us.toFixed(1).padStart(10)} ${r.busbw.toFixed(3).padStart(12)}`);
    }
    console.log(`# pipelined: ${PIPELINED_CALLS} one-element calls in flight, ${pipelined.toFixed(2)} us per call`);
  }
  await comm.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
