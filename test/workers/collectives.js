'use strict';
// One rank of test/20.collectives.test.js: every collective × every dtype,
// checked bit for bit against values computed here with plain loops (BigInt
// for integer dtypes, so wrap-around is computed exactly too). One case per
// collective × dtype (every size, op, root and placement inside it), and one
// per large-message check; collectivesCases() in test/helpers/cases.js lists
// them.

const { init } = require('../../dist');
const { DTYPES, encode } = require('../helpers/elements');
const { Checker, run, settle, sleep } = require('../helpers/worker');

const DTYPE_NAMES = Object.keys(DTYPES);
const LARGE_ELEMENTS = (64 * 1024 * 1024) / 4;
// Fills output buffers before a call, so an untouched output cannot pass.
const SENTINEL = 99;

/**
 * Inputs per reduction: small integers whose sums, products, minima and
 * maxima are exact in every dtype and in any order.
 */
const REDUCTIONS = [
  {
    name: 'sum',
    op: 'sum',
    value: (d, r, i) => {
      const v = (i * 7 + r * 5) % 21;
      return DTYPES[d].signed ? v - 10 : v;
    },
  },
  {
    name: 'prod',
    op: 'prod',
    // |product| <= 2^4 with 4 ranks: no int8 overflow.
    value: (d, r, i) => {
      const m = 1 + ((i + r) % 2);
      return DTYPES[d].signed && (i * 3 + r) % 3 === 0 ? -m : m;
    },
  },
  {
    name: 'min',
    op: 'min',
    value: (d, r, i) => {
      const v = (i * 5 + r * 3) % 17;
      return DTYPES[d].signed ? v - 8 : v;
    },
  },
  {
    name: 'max',
    op: 'max',
    value: (d, r, i) => {
      const v = (i * 5 + r * 3) % 17;
      return DTYPES[d].signed ? v - 8 : v;
    },
  },
  {
    name: 'avg',
    op: 'avg',
    floatingOnly: true,
    // Offsets that sum to zero over the ranks: the mean is the integer base.
    value: (d, r, i, size) => (i % 9) - 4 + (r < size - 1 ? r + 1 : -((size - 1) * size) / 2),
  },
  {
    name: 'avg (rounded mean)',
    op: 'avg',
    only: ['float32', 'float64'],
    // The sum is exact; the mean is sum / size rounded once to the dtype.
    value: (d, r, i) => ((i * 7 + r * 5) % 21) - 10,
  },
  {
    name: 'sum wrapping around',
    op: 'sum',
    integerOnly: true,
    value: (d, r, i) => plus(WRAP_BASE[d].sum, (i + r) % 5),
  },
  {
    name: 'prod wrapping around',
    op: 'prod',
    integerOnly: true,
    value: (d, r, i) => plus(WRAP_BASE[d].prod, (i + 2 * r) % 5),
  },
];

// Two's complement wrap is the documented behaviour of integer sum and prod.
const WRAP_BASE = {
  int8: { sum: 100, prod: 9 },
  uint8: { sum: 200, prod: 17 },
  int32: { sum: 2 ** 30 + 12345, prod: 60000 },
  int64: { sum: 2n ** 62n + 3n, prod: 2n ** 40n + 7n },
};

// int64 bases are BigInts: near 2^62 a Number is no longer exact.
function plus(base, k) {
  return typeof base === 'bigint' ? base + BigInt(k) : base + k;
}

function applies(red, d) {
  if (red.only) return red.only.includes(d);
  if (red.floatingOnly) return DTYPES[d].floating;
  if (red.integerOnly) return !DTYPES[d].floating;
  return true;
}

/** op folded over `xs` (one value per rank), in the dtype's arithmetic. */
function combine(d, op, xs) {
  const t = DTYPES[d];
  if (t.floating) {
    let acc = xs[0];
    for (let k = 1; k < xs.length; k++) {
      const x = xs[k];
      if (op === 'sum' || op === 'avg') acc += x;
      else if (op === 'prod') acc *= x;
      else if (op === 'min') acc = x < acc ? x : acc;
      else if (op === 'max') acc = x > acc ? x : acc;
    }
    return op === 'avg' ? acc / xs.length : acc;
  }
  let acc = BigInt(xs[0]);
  for (let k = 1; k < xs.length; k++) {
    const x = BigInt(xs[k]);
    if (op === 'sum') acc += x;
    else if (op === 'prod') acc *= x;
    else if (op === 'min') acc = x < acc ? x : acc;
    else if (op === 'max') acc = x > acc ? x : acc;
  }
  return t.signed ? BigInt.asIntN(t.bits, acc) : BigInt.asUintN(t.bits, acc);
}

function filled(d, n, v = SENTINEL) {
  return encode(d, new Array(n).fill(v));
}

function range(n) {
  return Array.from({ length: n }, (_, i) => i);
}

async function main() {
  const comm = await init();
  const { rank, size } = comm;
  const check = new Checker(rank);
  const ranks = range(size);

  // Issues every case of a batch before awaiting any, then checks them all.
  async function batch(cases) {
    const works = cases.map((c) => {
      try {
        return c.issue();
      } catch (err) {
        err.message = `${c.name}: ${err.message}`;
        throw err;
      }
    });
    const results = [];
    for (let k = 0; k < cases.length; k++) results.push(await settle(cases[k].name, works[k]));
    for (let k = 0; k < cases.length; k++) cases[k].verify(results[k]);
  }

  // allReduce: in place, out of place, and in place on a view inside a larger array.
  for (const d of DTYPE_NAMES) {
    check.begin(`allReduce ${d}`);
    const cases = [];
    for (const red of REDUCTIONS.filter((x) => applies(x, d))) {
      for (const n of [0, 1, 37, 1031]) {
        const inputs = ranks.map((r) => range(n).map((i) => red.value(d, r, i, size)));
        const want = encode(d, range(n).map((i) => combine(d, red.op, ranks.map((r) => inputs[r][i]))));
        const mine = encode(d, inputs[rank]);
        const opts = { op: red.op, ...DTYPES[d].opts };
        const name = `allReduce ${d} ${red.name} n=${n}`;
        {
          const buf = mine.slice();
          cases.push({
            name: `${name} in place`,
            issue: () => comm.allReduce(buf, opts),
            verify: (res) => {
              check.ok(`${name} in place: resolves with the buffer`, res === buf, 'resolved with another object');
              check.same(`${name} in place`, buf, want);
            },
          });
        }
        {
          const input = mine.slice();
          const output = filled(d, n);
          cases.push({
            name: `${name} out of place`,
            issue: () => comm.allReduce(input, { ...opts, output }),
            verify: (res) => {
              check.ok(`${name} out of place: resolves with the output`, res === output, 'resolved with another object');
              check.same(`${name} out of place`, output, want);
              check.same(`${name} out of place: input unchanged`, input, mine);
            },
          });
        }
        if (n === 37) {
          const outer = filled(d, n + 6);
          const view = outer.subarray(3, 3 + n);
          view.set(mine);
          const wantOuter = filled(d, n + 6);
          wantOuter.set(want, 3);
          cases.push({
            name: `${name} in place on a subarray`,
            issue: () => comm.allReduce(view, opts),
            verify: () => check.same(`${name} in place on a subarray (with its neighbours)`, outer, wantOuter),
          });
        }
      }
    }
    await batch(cases);
  }

  // reduceScatter: separate output, output = this rank's block of the input,
  // output = another block of the input.
  for (const d of DTYPE_NAMES) {
    check.begin(`reduceScatter ${d}`);
    const cases = [];
    for (const red of REDUCTIONS.filter((x) => applies(x, d))) {
      for (const n of [0, 1, 5]) {
        const inputs = ranks.map((r) => range(n * size).map((j) => red.value(d, r, j, size)));
        const want = encode(d, range(n).map((i) => combine(d, red.op, ranks.map((r) => inputs[r][rank * n + i]))));
        const mine = encode(d, inputs[rank]);
        const opts = { op: red.op, ...DTYPES[d].opts };
        const name = `reduceScatter ${d} ${red.name} n=${n}`;
        {
          const input = mine.slice();
          const output = filled(d, n);
          cases.push({
            name: `${name} separate output`,
            issue: () => comm.reduceScatter(input, output, opts),
            verify: (res) => {
              check.ok(`${name}: resolves with the output`, res === output, 'resolved with another object');
              check.same(`${name} separate output`, output, want);
              check.same(`${name} separate output: input unchanged`, input, mine);
            },
          });
        }
        for (const block of new Set([rank, (rank + 1) % size])) {
          const input = mine.slice();
          const output = input.subarray(block * n, block * n + n);
          const label = block === rank ? "output is this rank's block of the input" : `output is block ${block} of the input`;
          cases.push({
            name: `${name} ${label}`,
            issue: () => comm.reduceScatter(input, output, opts),
            verify: () => check.same(`${name} ${label}`, output, want),
          });
        }
      }
    }
    await batch(cases);
  }

  // allGather: separate buffers, and in place (input is this rank's slot of the output).
  for (const d of DTYPE_NAMES) {
    check.begin(`allGather ${d}`);
    const cases = [];
    for (const n of [0, 1, 37]) {
      const value = (r, i) => {
        const v = (i * 3 + r * 11) % 41;
        return DTYPES[d].signed ? v - 20 : v;
      };
      const want = encode(d, ranks.flatMap((r) => range(n).map((i) => value(r, i))));
      const mine = encode(d, range(n).map((i) => value(rank, i)));
      const opts = DTYPES[d].opts;
      const name = `allGather ${d} n=${n}`;
      {
        const input = mine.slice();
        const output = filled(d, n * size);
        cases.push({
          name: `${name} separate`,
          issue: () => comm.allGather(input, output, opts),
          verify: (res) => {
            check.ok(`${name}: resolves with the output`, res === output, 'resolved with another object');
            check.same(`${name} separate`, output, want);
            check.same(`${name} separate: input unchanged`, input, mine);
          },
        });
      }
      {
        const output = filled(d, n * size);
        const input = output.subarray(rank * n, rank * n + n);
        input.set(mine);
        cases.push({
          name: `${name} in place`,
          issue: () => comm.allGather(input, output, opts),
          verify: () => check.same(`${name} in place`, output, want),
        });
      }
    }
    await batch(cases);
  }

  // broadcast from every root.
  for (const d of DTYPE_NAMES) {
    check.begin(`broadcast ${d}`);
    const cases = [];
    for (const root of ranks) {
      for (const n of [0, 1, 37, 1031]) {
        const value = (i) => {
          const v = (i * 13 + root * 7) % 50;
          return DTYPES[d].signed ? v - 25 : v;
        };
        const want = encode(d, range(n).map(value));
        const buf = rank === root ? want.slice() : filled(d, n);
        const name = `broadcast ${d} root=${root} n=${n}`;
        cases.push({
          name,
          issue: () => comm.broadcast(buf, { root, ...DTYPES[d].opts }),
          verify: (res) => {
            check.ok(`${name}: resolves with the buffer`, res === buf, 'resolved with another object');
            check.same(name, buf, want);
          },
        });
      }
    }
    await batch(cases);
  }

  // reduce to every root with every op, in place and into options.output.
  for (const d of DTYPE_NAMES) {
    check.begin(`reduce ${d}`);
    const cases = [];
    for (const root of ranks) {
      for (const red of REDUCTIONS.filter((x) => applies(x, d))) {
        for (const n of [0, 1, 37]) {
          const inputs = ranks.map((r) => range(n).map((i) => red.value(d, r, i, size)));
          const want = encode(d, range(n).map((i) => combine(d, red.op, ranks.map((r) => inputs[r][i]))));
          const mine = encode(d, inputs[rank]);
          const opts = { op: red.op, root, ...DTYPES[d].opts };
          const name = `reduce ${d} ${red.name} root=${root} n=${n}`;
          {
            const buf = mine.slice();
            cases.push({
              name: `${name} in place`,
              issue: () => comm.reduce(buf, opts),
              verify: (res) => {
                check.ok(`${name} in place: resolves with the buffer`, res === buf, 'resolved with another object');
                if (rank === root) check.same(`${name} in place on the root`, buf, want);
              },
            });
          }
          {
            const input = mine.slice();
            const output = filled(d, n);
            cases.push({
              name: `${name} into output`,
              issue: () => comm.reduce(input, { ...opts, output }),
              verify: (res) => {
                check.ok(`${name} into output: resolves with the output`, res === output, 'resolved with another object');
                if (rank === root) check.same(`${name} into output on the root`, output, want);
                check.same(`${name} into output: input unchanged`, input, mine);
              },
            });
          }
        }
      }
    }
    await batch(cases);
  }

  // barrier: nobody leaves before the last rank arrives.
  {
    check.begin('barrier');
    const LATE_MS = 300;
    if (rank === 0) await sleep(LATE_MS);
    const t0 = Date.now();
    const res = await settle('barrier', comm.barrier());
    const waited = Date.now() - t0;
    check.equal('barrier resolves with undefined', res, undefined);
    if (rank !== 0) {
      check.ok('barrier waits for the last rank', waited >= LATE_MS - 100, `left after ${waited} ms while rank 0 arrived ${LATE_MS} ms late`);
    }
    await batch(range(5).map((k) => ({ name: `barrier ${k}`, issue: () => comm.barrier(), verify: () => {} })));
  }

  // allToAll: block j of rank r's input goes to rank j.
  const blockValue = (d, src, dst, i) => {
    const v = (src * 13 + dst * 7 + i * 3) % 50;
    return DTYPES[d].signed ? v - 25 : v;
  };
  for (const d of DTYPE_NAMES) {
    check.begin(`allToAll ${d}`);
    const cases = [];
    for (const n of [0, 1, 7]) {
      const mine = encode(d, ranks.flatMap((dst) => range(n).map((i) => blockValue(d, rank, dst, i))));
      const want = encode(d, ranks.flatMap((src) => range(n).map((i) => blockValue(d, src, rank, i))));
      const input = mine.slice();
      const output = filled(d, n * size);
      const name = `allToAll ${d} n=${n}`;
      cases.push({
        name,
        issue: () => comm.allToAll(input, output, DTYPES[d].opts),
        verify: (res) => {
          check.ok(`${name}: resolves with the output`, res === output, 'resolved with another object');
          check.same(name, output, want);
          check.same(`${name}: input unchanged`, input, mine);
        },
      });
    }
    await batch(cases);
  }

  // allToAllV: uneven counts, with zero-length splits, and all zero.
  for (const d of DTYPE_NAMES) {
    check.begin(`allToAllV ${d}`);
    const cases = [];
    const patterns = [
      ['uneven', (src, dst) => (src + 2 * dst) % 3],
      ['uneven, shifted', (src, dst) => (src + 2 * dst + 1) % 4],
      ['only to rank 0', (src, dst) => (dst === 0 ? src + 1 : 0)],
      ['all zero', () => 0],
    ];
    for (const [label, count] of patterns) {
      const inputSplits = ranks.map((dst) => count(rank, dst));
      const outputSplits = ranks.map((src) => count(src, rank));
      const mine = encode(d, ranks.flatMap((dst) => range(count(rank, dst)).map((i) => blockValue(d, rank, dst, i))));
      const want = encode(d, ranks.flatMap((src) => range(count(src, rank)).map((i) => blockValue(d, src, rank, i))));
      const input = mine.slice();
      const output = filled(d, want.length);
      const name = `allToAllV ${d} ${label} (in ${inputSplits}, out ${outputSplits})`;
      cases.push({
        name,
        issue: () => comm.allToAllV(input, inputSplits, output, outputSplits, DTYPES[d].opts),
        verify: (res) => {
          check.ok(`${name}: resolves with the output`, res === output, 'resolved with another object');
          check.same(name, output, want);
          check.same(`${name}: input unchanged`, input, mine);
        },
      });
    }
    await batch(cases);
  }

  // send/recv around the ring; two tags per pair, received in the opposite
  // order to the one they were sent in, so only the tag can match them.
  if (size > 1) {
    const next = (rank + 1) % size;
    const prev = (rank + size - 1) % size;
    for (const d of DTYPE_NAMES) {
      check.begin(`send/recv ${d}`);
      const cases = [];
      for (const n of [0, 1, 37]) {
        const message = (src, tag) => encode(d, range(n).map((i) => blockValue(d, src, tag, i)));
        const sends = [1, 2].map((tag) => {
          const buf = message(rank, tag);
          const name = `send ${d} n=${n} tag=${tag} to ${next}`;
          return { name, issue: () => comm.send(buf, next, { tag, ...DTYPES[d].opts }), verify: () => check.same(`${name}: buffer unchanged`, buf, message(rank, tag)) };
        });
        const recvs = [2, 1].map((tag) => {
          const buf = filled(d, n);
          const name = `recv ${d} n=${n} tag=${tag} from ${prev}`;
          return {
            name,
            issue: () => comm.recv(buf, prev, { tag, ...DTYPES[d].opts }),
            verify: (res) => {
              check.ok(`${name}: resolves with the buffer`, res === buf, 'resolved with another object');
              check.same(name, buf, message(prev, tag));
            },
          };
        });
        // Odd ranks post their receives first.
        cases.push(...(rank % 2 === 0 ? [...sends, ...recvs] : [...recvs, ...sends]));
      }
      await batch(cases);
    }
  }

  // One 64 MiB float32 all-reduce, checked element by element.
  if (size === 2) {
    check.begin('allReduce 64 MiB float32');
    const value = (r, i) => (i % 1000) + r * (i % 3);
    const buf = new Float32Array(LARGE_ELEMENTS);
    for (let i = 0; i < buf.length; i++) buf[i] = value(rank, i);
    await settle('allReduce 64 MiB float32', comm.allReduce(buf));
    let bad = 0;
    let first = -1;
    for (let i = 0; i < buf.length; i++) {
      if (buf[i] !== value(0, i) + value(1, i)) {
        if (bad++ === 0) first = i;
      }
    }
    check.ok('allReduce 64 MiB float32', bad === 0, `${bad} elements differ, the first at ${first}: ${buf[first]}, expected ${value(0, first) + value(1, first)}`);
  }

  // Reduce-scatters large enough to travel in pieces (6 MiB per rank's block),
  // with the output apart from the input, on this rank's block of it, and on
  // another rank's block of it.
  if (size > 1) {
    const block = (3 << 20) / 2;
    const value = (r, i) => ((i * 7 + r * 13) % 1001) - 500;
    const expected = (i) => {
      let sum = 0;
      for (let r = 0; r < size; r++) sum += value(r, i);
      return sum;
    };
    for (const where of ['separate', 'own block', 'next block']) {
      check.begin(`reduceScatter 6 MiB blocks, output ${where}`);
      const input = new Float32Array(block * size);
      for (let i = 0; i < input.length; i++) input[i] = value(rank, i);
      const other = (rank + 1) % size;
      const output =
        where === 'separate'
          ? new Float32Array(block)
          : input.subarray((where === 'own block' ? rank : other) * block, ((where === 'own block' ? rank : other) + 1) * block);
      await settle(`reduceScatter 6 MiB blocks, output ${where}`, comm.reduceScatter(input, output));
      let bad = 0;
      let first = -1;
      for (let k = 0; k < block; k++) {
        if (output[k] !== expected(rank * block + k)) {
          if (bad++ === 0) first = k;
        }
      }
      check.ok(
        `reduceScatter 6 MiB blocks, output ${where}`,
        bad === 0,
        `${bad} elements differ, the first at ${first}: ${output[first]}, expected ${expected(rank * block + first)}`,
      );
    }
  }

  check.report();
  await settle('final barrier', comm.barrier());
  await comm.destroy();
}

run(main);
