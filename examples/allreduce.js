// Every rank contributes [rank + 1, rank + 1, …]; after the all-reduce every
// rank holds the same sums. Run with: npx collectives-run --nproc-per-node 4 examples/allreduce.js
const { init } = require('collectives');

async function main() {
  const comm = await init();
  const data = new Float32Array(4).fill(comm.rank + 1);
  await comm.allReduce(data, { op: 'sum' });
  console.log(`rank ${comm.rank} of ${comm.size}: [${Array.from(data).join(', ')}]`);
  await comm.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
