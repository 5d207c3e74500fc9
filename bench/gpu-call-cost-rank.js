// One rank of bench/gpu-call-cost.js (started by it through collectives-run):
// N one-element float32 sum all-reduces in place on a DeviceBuffer, the calls
// bench/reference/nccl_loop.cc makes from C++, timed the same two ways:
//   pipelined: N Works issued, then all awaited; per call = total / N
//   awaited:   each Work awaited before the next is issued
// Every Work's result is checked (it resolves to the buffer, and a 1-rank sum
// leaves the value as it was), and the counts are reported back, so that a run
// that issued fewer calls than asked cannot pass for a fast one.
//
//   bench/gpu-call-cost-rank.js ITERS WARMUP    (prints one JSON line on rank 0)
'use strict';

const { init, DeviceBuffer } = require('..');

const [iters, warmup] = process.argv.slice(2).map(Number);

async function main() {
  const comm = await init();
  const buf = new DeviceBuffer('float32', 1);
  buf.copyFrom(Float32Array.of(1));
  const resolved = { pipelined: 0, awaited: 0 };
  const count = (mode, result) => {
    if (result !== buf) throw new Error(`${mode}: a Work resolved to ${result}, expected the DeviceBuffer`);
    resolved[mode]++;
  };

  for (let i = 0; i < warmup; i++) await comm.allReduce(buf);

  let start = process.hrtime.bigint();
  const works = [];
  for (let i = 0; i < iters; i++) works.push(comm.allReduce(buf));
  const results = await Promise.all(works);
  const pipelined = Number(process.hrtime.bigint() - start) / 1000 / iters;
  for (const r of results) count('pipelined', r);

  start = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) count('awaited', await comm.allReduce(buf));
  const awaited = Number(process.hrtime.bigint() - start) / 1000 / iters;

  const value = buf.copyTo()[0];
  if (value !== 1) throw new Error(`the all-reduced value is ${value}, expected 1 (a 1-rank sum)`);
  buf.free();
  if (comm.rank === 0) process.stdout.write(`${JSON.stringify({ iters, warmup, resolved, pipelined_us: pipelined, awaited_us: awaited })}\n`);
  await comm.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
