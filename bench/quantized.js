// Quantized against plain reduce-scatter / all-reduce / all-gather (float32),
// with the wire bytes each rank sends. Run it as a plain node script; it
// starts the ranks through collectives-run:
//
//   node bench/quantized.js --nproc 2 [--sizes 1,16,64,256] [--iters 3] [--shaped]
//
// --shaped runs every rank inside a fresh network namespace whose loopback is
// limited to 1 Gbit/s (tc tbf rate 1gbit burst 256kb latency 50ms): every
// address stays on loopback, and all ranks share the one link. It needs root,
// `unshare` (util-linux) and `ip` / `tc` (iproute2: apt-get install -y
// iproute2), and says so when it cannot.
'use strict';

const { benchMain } = require('./shaped-link');

const OPS = ['reduceScatter', 'allReduce', 'allGather'];
const FORMATS = ['float32', 'int8', 'int4'];

/** Bytes one rank sends for `op` on an array of `bytes` (float32) over `n` ranks. */
function wireBytes(op, format, bytes, n, quantizedSize) {
  const count = bytes / 4;
  if (n === 1) return 0;
  if (format === 'float32') return op === 'allReduce' ? (2 * (n - 1) * bytes) / n : ((n - 1) * bytes) / n;
  const q = (c) => quantizedSize(c, { format });
  if (op === 'allReduce') return 2 * (n - 1) * q(Math.ceil(count / n));
  return (n - 1) * q(count / n);
}

/** Times one op × format × size on an initialized communicator; returns seconds per call (max over ranks). */
async function timeCase(comm, op, format, bytes, iters) {
  const n = comm.size;
  const count = bytes / 4;
  const big = new Float32Array(count).map((_, i) => Math.sin(i));
  const small = new Float32Array(count / n).map((_, i) => Math.cos(i));
  const out = op === 'allGather' ? new Float32Array(count) : new Float32Array(count / n);
  const opts = format === 'float32' ? {} : { format };
  const call = () => {
    if (op === 'allReduce') return format === 'float32' ? comm.allReduce(big) : comm.allReduceQuantized(big, opts);
    if (op === 'reduceScatter') return format === 'float32' ? comm.reduceScatter(big, out) : comm.reduceScatterQuantized(big, out, opts);
    return format === 'float32' ? comm.allGather(small, out) : comm.allGatherQuantized(small, out, opts);
  };
  await call();
  await comm.barrier();
  const t = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await call();
  const mine = new Float64Array([Number(process.hrtime.bigint() - t) / 1e9 / iters]);
  await comm.allReduce(mine, { op: 'max' });
  return mine[0];
}

async function rankMain(opts) {
  const { init, quantizedSize } = require('..');
  const comm = await init();
  const n = comm.size;
  if (comm.rank === 0) {
    console.log(`# ${n} ranks, ${opts.shaped ? 'loopback shaped to 1 Gbit/s (tbf)' : 'loopback'}; float32 arrays, block 256; time = max over ranks, mean of ${opts.iters} calls`);
    console.log('# op             size(MiB)  format   time(ms)  wire MB/rank  speed-up vs float32');
  }
  for (const mib of opts.sizes) {
    const bytes = mib << 20;
    for (const op of OPS) {
      let base = 0;
      for (const format of FORMATS) {
        const iters = mib >= 64 ? Math.max(1, Math.ceil(opts.iters / 2)) : opts.iters;
        const s = await timeCase(comm, op, format, bytes, iters);
        if (format === 'float32') base = s;
        if (comm.rank === 0) {
          const wire = wireBytes(op, format, bytes, n, quantizedSize) / 1e6;
          console.log(`${op.padEnd(15)} ${String(mib).padStart(9)}  ${format.padEnd(7)} ${(s * 1e3).toFixed(1).padStart(9)} ${wire.toFixed(1).padStart(13)} ${(base / s).toFixed(2).padStart(10)}`);
        }
      }
    }
  }
  await comm.destroy();
}

function parse(argv) {
  const get = (name, d) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : d);
  return {
    nproc: Number(get('--nproc', 2)),
    sizes: String(get('--sizes', '1,16,64,256')).split(',').map(Number),
    iters: Number(get('--iters', 3)),
    shaped: argv.includes('--shaped'),
  };
}

module.exports = { wireBytes, timeCase };
if (require.main === module) {
  const argv = process.argv.slice(2);
  const opts = parse(argv);
  // lo's own MTU (64 KiB), as the recorded runs had.
  benchMain(__filename, () => rankMain(opts), opts.nproc, argv, opts.shaped ? { rate: '1gbit', mtu: 65536 } : {});
}
