// Subgroups beside the world: even and odd ranks each reduce among
// themselves, then every rank broadcasts from rank 0 of the world.
// Run with: npx collectives-run --nproc-per-node 4 examples/subgroups.js
const { init } = require('collectives');

async function main() {
  const world = await init();
  const half = await world.split(world.rank % 2); // color: even or odd
  const value = Int32Array.of(world.rank);
  await half.allReduce(value, { op: 'sum' });
  const fromRoot = Int32Array.of(world.rank === 0 ? 42 : 0);
  await world.broadcast(fromRoot, { root: 0 });
  console.log(
    `world rank ${world.rank} is rank ${half.rank} of ${half.size} in its half; ` +
      `sum over the half ${value[0]}, broadcast ${fromRoot[0]}`,
  );
  await half.destroy();
  await world.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
