// Overlap of compute and communication: the all-reduce of one gradient bucket
// runs off the JavaScript thread while the next bucket is computed.
// Run with: npx collectives-run --nproc-per-node 2 examples/overlap.js
const { init } = require('collectives');

function computeBucket(rank, bucket, size) {
  const grad = new Float32Array(size);
  for (let i = 0; i < size; i++) grad[i] = Math.sin(rank + bucket + i * 1e-3);
  return grad;
}

async function main() {
  const comm = await init();
  const buckets = 8;
  const pending = [];
  for (let b = 0; b < buckets; b++) {
    const grad = computeBucket(comm.rank, b, 1 << 20);
    pending.push(comm.allReduce(grad, { op: 'avg' })); // returns at once
  }
  const averaged = await Promise.all(pending); // each Work resolves to its buffer
  console.log(`rank ${comm.rank}: ${averaged.length} buckets averaged, first value ${averaged[0][0].toFixed(6)}`);
  await comm.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
