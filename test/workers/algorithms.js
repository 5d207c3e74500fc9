'use strict';
// One rank of test/22.algorithms.test.js: prints, as JSON on rank 0, the
// algorithm the communicator reports for each operation and size given.

const { init } = require('../../dist');

async function main() {
  const comm = await init();
  const queries = JSON.parse(process.argv[2]);
  const answers = queries.map(([op, bytes]) => comm.algorithm(op, bytes));
  if (comm.rank === 0) console.log(`ALGORITHMS ${JSON.stringify(answers)}`);
  await comm.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
