'use strict';
// One rank (of 4) of test/40.subgroups.test.js: split(), subgroup() and
// nested splits, each checked with collectives whose results depend on who
// the members are. One case per way of making a group (SUBGROUP_CASES in
// test/40.subgroups.test.js).

const { init } = require('../../dist');
const { Checker, run, settle } = require('../helpers/worker');

/** The parent ranks of `comm`'s members, in `comm`'s rank order. */
async function members(comm, parentRank) {
  const all = new Int32Array(comm.size);
  await settle('allGather of parent ranks', comm.allGather(Int32Array.of(parentRank), all));
  return [...all];
}

async function main() {
  const world = await init();
  const { rank, size } = world;
  const check = new Checker(rank);
  if (size !== 4) throw new Error(`this worker needs 4 ranks, got ${size}`);

  // split(rank % 2): {0, 2} and {1, 3}, ranked by parent rank.
  check.begin('split(rank % 2)');
  const parity = await settle('split(rank % 2)', world.split(rank % 2));
  {
    const group = rank % 2 === 0 ? [0, 2] : [1, 3];
    check.equal('split(rank % 2): size', parity.size, 2);
    check.equal('split(rank % 2): rank', parity.rank, group.indexOf(rank));
    check.equal('split(rank % 2): members', (await members(parity, rank)).join(','), group.join(','));

    const sub = Int32Array.of(rank + 1, 10 * (rank + 1));
    await settle('allReduce in the parity group', parity.allReduce(sub));
    const s = group.reduce((acc, r) => acc + r + 1, 0);
    check.equal('allReduce in the parity group [0]', sub[0], s);
    check.equal('allReduce in the parity group [1]', sub[1], 10 * s);
  }

  // Parent and subgroup work interleaved, nothing awaited in between.
  {
    check.begin('parent and subgroup work interleaved');
    const group = rank % 2 === 0 ? [0, 2] : [1, 3];
    const n = 1 << 16;
    const fill = (k) => {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = (i % 97) * (rank + k);
      return a;
    };
    const expected = (ranks, k) => {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) for (const r of ranks) a[i] += (i % 97) * (r + k);
      return a;
    };
    const p1 = fill(1);
    const s1 = fill(2);
    const p2 = fill(3);
    const s2 = fill(4);
    const works = [
      world.allReduce(p1),
      parity.allReduce(s1),
      world.allReduce(p2),
      parity.allReduce(s2, { op: 'max' }),
    ];
    await Promise.all(works.map((w, k) => settle(`interleaved #${k}`, w)));
    check.same('interleaved parent allReduce #1', p1, expected([0, 1, 2, 3], 1));
    check.same('interleaved subgroup allReduce #1', s1, expected(group, 2));
    check.same('interleaved parent allReduce #2', p2, expected([0, 1, 2, 3], 3));
    const max = new Float64Array(n);
    for (let i = 0; i < n; i++) max[i] = (i % 97) * (Math.max(...group) + 4);
    check.same('interleaved subgroup allReduce max', s2, max);
  }

  // subgroup([1, 2, 3]): null on rank 0, a 3-rank communicator elsewhere.
  {
    check.begin('subgroup([1, 2, 3])');
    const sg = await settle('subgroup([1, 2, 3])', world.subgroup([1, 2, 3]));
    if (rank === 0) {
      check.equal('subgroup([1, 2, 3]) on rank 0', sg, null);
    } else {
      check.ok('subgroup([1, 2, 3]) elsewhere', sg !== null, 'got null');
      check.equal('subgroup([1, 2, 3]): size', sg.size, 3);
      check.equal('subgroup([1, 2, 3]): rank', sg.rank, rank - 1);
      check.equal('subgroup([1, 2, 3]): members', (await members(sg, rank)).join(','), '1,2,3');
      const b = new Int32Array(3);
      if (sg.rank === 2) b.set([7, 8, 9]);
      await settle('broadcast in subgroup', sg.broadcast(b, { root: 2 }));
      check.equal('broadcast from subgroup rank 2 (world rank 3)', b.join(','), '7,8,9');
      const x = Int32Array.of(rank);
      await settle('allReduce in subgroup', sg.allReduce(x));
      check.equal('allReduce in subgroup', x[0], 1 + 2 + 3);
      await sg.destroy();
    }
    // The same group listed in another order is the same group.
    const again = await settle('subgroup([3, 1, 2])', world.subgroup([3, 1, 2]));
    if (rank === 0) check.equal('subgroup([3, 1, 2]) on rank 0', again, null);
    else {
      check.equal('subgroup([3, 1, 2]): rank', again.rank, rank - 1);
      await again.destroy();
    }
  }

  // split with a key: split(0, -rank) reverses the order.
  check.begin('split(0, -rank)');
  const reversed = await settle('split(0, -rank)', world.split(0, -rank));
  {
    check.equal('split(0, -rank): size', reversed.size, 4);
    check.equal('split(0, -rank): rank', reversed.rank, size - 1 - rank);
    check.equal('split(0, -rank): members', (await members(reversed, rank)).join(','), '3,2,1,0');
    const b = Int32Array.of(rank === 3 ? 42 : -1);
    await settle('broadcast from reversed rank 0', reversed.broadcast(b, { root: 0 }));
    check.equal('broadcast from reversed rank 0 (world rank 3)', b[0], 42);
  }

  // A null color joins no group.
  {
    check.begin('split with a null color');
    const none = await settle('split(rank === 0 ? null : 0)', world.split(rank === 0 ? null : 0));
    if (rank === 0) check.equal('split with a null color', none, null);
    else {
      check.equal('split without rank 0: size', none.size, 3);
      check.equal('split without rank 0: members', (await members(none, rank)).join(','), '1,2,3');
      await none.destroy();
    }
  }

  // Nested: a split of the reversed communicator by its rank's parity.
  {
    check.begin('nested splits');
    // reversed ranks: world 0→3, 1→2, 2→1, 3→0; even reversed ranks are world 3 and 1.
    const nested = await settle('nested split', reversed.split(reversed.rank % 2));
    const group = reversed.rank % 2 === 0 ? [3, 1] : [2, 0];
    check.equal('nested split: size', nested.size, 2);
    check.equal('nested split: rank', nested.rank, group.indexOf(rank));
    check.equal('nested split: members', (await members(nested, rank)).join(','), group.join(','));
    const x = BigInt64Array.of(BigInt(rank) + 100n);
    await settle('allReduce in the nested split', nested.allReduce(x, { op: 'prod' }));
    check.equal('allReduce prod in the nested split', x[0], group.reduce((acc, r) => acc * (BigInt(r) + 100n), 1n));

    // Three levels deep: each member alone.
    const single = await settle('split of the nested split', nested.split(nested.rank));
    check.equal('third-level split: size', single.size, 1);
    check.equal('third-level split: rank', single.rank, 0);
    const y = Float32Array.of(rank);
    await settle('allReduce alone', single.allReduce(y));
    check.equal('allReduce alone', y[0], rank);
    await single.destroy();
    await nested.destroy();
  }

  // Every communicator still works after its children were destroyed.
  {
    check.begin('parents after their children are destroyed');
    const x = Int32Array.of(1);
    await settle('parity after children', parity.allReduce(x));
    check.equal('parity group still works', x[0], 2);
    const y = Int32Array.of(1);
    await settle('world after children', world.allReduce(y));
    check.equal('world still works', y[0], 4);
  }

  check.report();
  await reversed.destroy();
  await parity.destroy();
  await settle('final barrier', world.barrier());
  await world.destroy();
}

run(main);
