'use strict';
// One rank of test/47.mpi.test.js, started by mpirun without COLLECTIVES_ENGINE:
// init() must pick the MPI engine by itself (the ranks were started by
// mpirun and libmpi loads), say so in backends(), and run collectives,
// point-to-point transfers and a monitored barrier through it.

const { init, backends } = require('../../dist');
const { Checker, run, settle } = require('../helpers/worker');

run(async () => {
  const comm = await init();
  const { rank, size } = comm;
  const check = new Checker(rank);

  check.begin('init picks MPI under mpirun');
  const mpi = backends().mpi;
  check.equal('comm.engine', comm.engine, 'mpi');
  check.equal('backends().mpi.underMpirun', mpi.underMpirun, true);
  check.equal('backends().mpi.isDefault', mpi.isDefault, true);
  check.equal('backends().mpi.initialized', mpi.initialized, true);
  check.equal('backends().mpi.threadLevel', mpi.threadLevel === 'MPI_THREAD_SERIALIZED' || mpi.threadLevel === 'MPI_THREAD_MULTIPLE', true);
  check.ok('backends().mpi.version', /^[0-9]+\.[0-9]+/.test(mpi.version ?? ''), `got ${mpi.version}`);
  check.equal("algorithm('all_reduce')", comm.algorithm('all_reduce', 1 << 20), 'mpi');

  check.begin('send/recv in a ring');
  const next = (rank + 1) % size;
  const prev = (rank + size - 1) % size;
  const got = new Int32Array(4);
  const recv = comm.recv(got, prev, { tag: 7 });
  const send = comm.send(Int32Array.of(rank, rank * 2, rank * 3, 42), next, { tag: 7 });
  await settle('send', send.wait());
  await settle('recv', recv.wait());
  check.same('received from the previous rank', got, Int32Array.of(prev, prev * 2, prev * 3, 42));

  check.begin('monitored barrier');
  await settle('monitoredBarrier', comm.monitoredBarrier({ timeoutMs: 10000 }).wait());
  check.ok('every rank arrived', true);

  check.begin("large all-reduces (the engine's ring)");
  // Counts that do not divide by the ranks, every op, in place and not.
  const n = (1 << 19) + 3;
  const ints = Int32Array.from({ length: n }, (_, i) => ((i * 7 + rank * 5) % 21) - 10);
  const want = Int32Array.from({ length: n }, (_, i) => {
    let t = 0;
    for (let r = 0; r < size; r++) t += ((i * 7 + r * 5) % 21) - 10;
    return t;
  });
  const intsOut = new Int32Array(n);
  await settle('allReduce int32 out of place', comm.allReduce(ints, { output: intsOut }).wait());
  check.same('int32 sum, out of place', intsOut, want);
  await settle('allReduce int32 in place', comm.allReduce(ints).wait());
  check.same('int32 sum, in place', ints, want);
  const bytes = Int8Array.from({ length: 4 * n }, (_, i) => (i % 2 ? 100 : -100) + rank);
  await settle('allReduce int8', comm.allReduce(bytes).wait());
  const wrapped = new Int8Array(4 * n);
  for (let i = 0; i < 4 * n; i++) wrapped[i] = size * (i % 2 ? 100 : -100) + (size * (size - 1)) / 2;
  check.same('int8 sum wraps around', bytes, wrapped);
  const floats = Float32Array.from({ length: n }, (_, i) => (i % 9) + rank * size - (size * (size - 1)) / 2);
  await settle('allReduce float32 avg', comm.allReduce(floats, { op: 'avg' }).wait());
  check.same('float32 avg', floats, Float32Array.from({ length: n }, (_, i) => i % 9));
  const maxes = Float64Array.from({ length: n }, (_, i) => (i + rank) % size);
  await settle('allReduce float64 max', comm.allReduce(maxes, { op: 'max' }).wait());
  check.same('float64 max', maxes, new Float64Array(n).fill(size - 1));

  check.begin('several communicators in flight at once');
  const other = await init({ engine: 'mpi' });
  const a = new Float64Array(1000).fill(rank + 1);
  const b = new Float64Array(1000).fill(2 * (rank + 1));
  const wa = comm.allReduce(a);
  const wb = other.allReduce(b);
  await settle('allReduce on both', Promise.all([wa.wait(), wb.wait()]));
  const total = (size * (size + 1)) / 2;
  check.same('first communicator', a, new Float64Array(1000).fill(total));
  check.same('second communicator', b, new Float64Array(1000).fill(2 * total));
  await other.destroy();

  check.report();
  await comm.destroy();
});
