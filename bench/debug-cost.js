// Cost of COLLECTIVES_DEBUG=detail: two communicators over the same ranks,
// one plain and one in detail mode, timed in alternating rounds in one run so
// that a noisy machine affects both alike. Prints the median per call.
//
//   node dist/launch/cli.js --nproc-per-node N --master-port 0 --no-prefix bench/debug-cost.js
'use strict';

const os = require('node:os');
const { versions } = require('..');
const { loadAddon } = require('../dist/core/loader');
const { DTYPE_CODE, REDUCE_OP_CODE } = require('../dist/core/dtypes');

const SIZES = [8, 4096, 1 << 20]; // bytes of float32
const ROUNDS = 5;
const PIPELINED_CALLS = 2000;
const TIMEOUT_MS = 60000;

const F32 = DTYPE_CODE.float32;
const SUM = REDUCE_OP_CODE.sum;

function connect(debug) {
  const env = process.env;
  return loadAddon().connect({
    rank: Number(env.RANK),
    size: Number(env.WORLD_SIZE),
    timeoutMs: TIMEOUT_MS,
    prefix: `${env.COLLECTIVES_RUN_ID}/bench-${debug}`,
    hostname: '127.0.0.1',
    storeHost: env.MASTER_ADDR,
    storePort: Number(env.MASTER_PORT),
    token: env.COLLECTIVES_TOKEN,
    debug,
  });
}

async function awaited(comm, bytes) {
  const buf = new Float32Array(bytes / 4);
  const iters = bytes >= 1 << 20 ? 20 : 200;
  for (let i = 0; i < 5; i++) await comm.allReduce(buf, buf, F32, SUM, TIMEOUT_MS);
  await comm.barrier(TIMEOUT_MS);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await comm.allReduce(buf, buf, F32, SUM, TIMEOUT_MS);
  return Number(process.hrtime.bigint() - t0) / 1000 / iters;
}

async function pipelined(comm) {
  const buf = new Float32Array(1);
  await comm.barrier(TIMEOUT_MS);
  const t0 = process.hrtime.bigint();
  const works = [];
  for (let i = 0; i < PIPELINED_CALLS; i++) works.push(comm.allReduce(buf, buf, F32, SUM, TIMEOUT_MS));
  await Promise.all(works);
  return Number(process.hrtime.bigint() - t0) / 1000 / PIPELINED_CALLS;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const off = await connect('off');
  const detail = await connect('detail');
  const cases = [...SIZES.map((b) => [`${b}`, (c) => awaited(c, b)]), ['pipelined', pipelined]];
  const times = cases.map(() => ({ off: [], detail: [] }));
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < cases.length; i++) {
      times[i].off.push(await cases[i][1](off));
      times[i].detail.push(await cases[i][1](detail));
    }
  }
  if (off.rank === 0) {
    const v = versions();
    console.log(`# ${off.size} ranks, ${os.cpus().length} CPUs, Node ${v.node}, Gloo ${v.gloo}, loopback; median of ${ROUNDS} alternating rounds`);
    console.log('#     bytes   off(us)  detail(us)  added(us)');
    for (let i = 0; i < cases.length; i++) {
      const a = median(times[i].off);
      const b = median(times[i].detail);
      const label = cases[i][0] === 'pipelined' ? `pipelined 4 B, ${PIPELINED_CALLS} in flight` : cases[i][0];
      console.log(`${label.padStart(11)} ${a.toFixed(1).padStart(9)} ${b.toFixed(1).padStart(11)} ${(b - a).toFixed(1).padStart(10)}`);
    }
  }
  off.close();
  detail.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
