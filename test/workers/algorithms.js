'use strict';
// One rank of test/22.algorithms.test.js: reports, in its case line's
// "value", the algorithm the communicator names for each operation and size
// given; the test checks the names.

const { init } = require('../../dist');
const { caseLine, run } = require('../helpers/worker');

run(async () => {
  const comm = await init();
  const queries = JSON.parse(process.argv[2]);
  const answers = queries.map(([op, bytes]) => comm.algorithm(op, bytes));
  caseLine({ case: 'algorithm choices', ok: true, rank: comm.rank, value: answers });
  await comm.destroy();
});
