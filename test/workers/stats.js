'use strict';
// One rank of test/31.stats.test.js: comm.stats() against byte counts computed here from each
// collective's formula (docs/api.md, "stats").

const { init, quantizedSize } = require('../../dist');
const { Checker, run } = require('../helpers/worker');

async function main() {
  const comm = await init();
  const { rank, size } = comm;
  const check = new Checker(rank);
  const n = 6 * size * 64;
  const B = n * 4;
  const share = (B * (size - 1)) / size;
  // A broadcast moves the buffer from the root to the others: nothing on one rank.
  const rootSends = size > 1 && rank === size - 1 ? B : 0;
  const othersReceive = size > 1 && rank !== size - 1 ? B : 0;

  check.begin('each collective counts its calls and bytes');
  comm.resetStats();
  const x = new Float32Array(n).fill(1);
  await comm.allReduce(x);
  await comm.allReduce(x, { op: 'avg' });
  await comm.reduceScatter(x, new Float32Array(n / size));
  await comm.allGather(new Float32Array(n / size), x);
  await comm.allToAll(x, new Float32Array(n));
  await comm.broadcast(x, { root: size - 1 });
  await comm.barrier();
  const s = comm.stats().operations;
  const expect = {
    allReduce: [2, 4 * share],
    reduceScatter: [1, share],
    allGather: [1, share],
    allToAll: [1, share],
    broadcast: [1, rootSends],
    barrier: [1, 0],
  };
  for (const [op, [calls, sent]] of Object.entries(expect)) {
    check.equal(`${op} calls`, s[op] && s[op].calls, calls);
    check.equal(`${op} bytes sent`, s[op] && s[op].bytesSent, sent);
  }
  check.equal('broadcast bytes received', s.broadcast.bytesReceived, othersReceive);
  check.ok('time in flight counted', s.allReduce.timeMs > 0, `timeMs ${s.allReduce.timeMs}`);
  const total = comm.stats().total;
  check.equal('total bytes sent', total.bytesSent, 4 * share + 3 * share + rootSends);
  check.equal('total calls', total.calls, 7);

  check.begin('quantized collectives count their encoded slots');
  comm.resetStats();
  await comm.allReduceQuantized(new Float32Array(n).fill(rank), { format: 'int8' });
  await comm.allGatherQuantized(new Float32Array(n / size), new Float32Array(n), { format: 'int4', blockSize: 64 });
  const q = comm.stats().operations;
  const shard = Math.ceil(n / size);
  check.equal('allReduceQuantized bytes sent', q.allReduceQuantized.bytesSent, 2 * (size - 1) * quantizedSize(shard, { format: 'int8' }));
  check.equal('allGatherQuantized bytes sent', q.allGatherQuantized.bytesSent, (size - 1) * quantizedSize(n / size, { format: 'int4', blockSize: 64 }));

  check.begin('send and recv count their buffers; reset starts from zero');
  comm.resetStats();
  if (size > 1) {
    const peer = rank ^ 1;
    if (peer < size) {
      const buf = new Float64Array(10);
      if (rank % 2 === 0) await comm.send(buf, peer);
      else await comm.recv(buf, peer);
      const p = comm.stats().operations;
      if (rank % 2 === 0) check.equal('send bytes', p.send.bytesSent, 80);
      else check.equal('recv bytes', p.recv.bytesReceived, 80);
    }
  }
  comm.resetStats();
  check.equal('nothing after reset', comm.stats().total.calls, 0);
  check.report();
  await comm.destroy();
}

run(main);
