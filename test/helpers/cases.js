'use strict';
// The mocha side of the case lines that test/helpers/worker.js prints: a
// test names the cases it expects of each rank and asserts them one by one,
// so a failure says which case on which rank, and a case that never reported
// (a rank that died midway, or printed nothing) fails by name too.

const assert = require('node:assert/strict');

// The launcher's prefix on every line of a rank; spawnRanks' ranks have none.
const PREFIX = /^\[rank(\d+)\]: /;

/**
 * The case lines in `stdout`, as a Map from rank to the cases in the order
 * printed. A line without the launcher's prefix belongs to the rank it names,
 * or to `rank` (for one rank's own stdout).
 */
function parseCases(stdout, rank) {
  const byRank = new Map();
  for (const raw of stdout.split('\n')) {
    const m = PREFIX.exec(raw);
    const line = m ? raw.slice(m[0].length) : raw;
    if (!line.startsWith('{"case":')) continue;
    let c;
    try {
      c = JSON.parse(line);
    } catch {
      // A rank killed mid-write leaves half a line; the case then counts as missing.
      continue;
    }
    const r = m ? Number(m[1]) : c.rank ?? rank;
    if (!byRank.has(r)) byRank.set(r, []);
    byRank.get(r).push(c);
  }
  return byRank;
}

/**
 * Asserts that each rank of `ranks` reported every case of `expected` (a list
 * of names, or a function of the rank giving one), no other case, and each
 * with ok. `cases` is parseCases' Map or a stdout to parse; `context` (the
 * ranks' output) is appended to every failure message.
 */
function assertCases(cases, ranks, expected, context = '') {
  const byRank = typeof cases === 'string' ? parseCases(cases) : cases;
  const tail = context ? `\n${context}` : '';
  // Failed cases first, on every rank: when one rank fails, the launcher
  // stops the others, whose missing cases would otherwise hide the cause.
  for (const r of ranks) {
    for (const c of byRank.get(r) ?? []) assert.ok(c.ok, `${c.case} on rank ${r}: ${c.detail}${tail}`);
  }
  for (const r of ranks) {
    const got = byRank.get(r) ?? [];
    const want = typeof expected === 'function' ? expected(r) : expected;
    const names = got.map((c) => c.case);
    const twice = names.filter((n, i) => names.indexOf(n) !== i);
    assert.deepEqual(twice, [], `rank ${r} reported these cases more than once: ${twice.join(', ')}${tail}`);
    const missing = want.filter((n) => !names.includes(n));
    assert.deepEqual(missing, [], `rank ${r} never reported ${missing.length} of ${want.length} cases: ${missing.join(', ')}${tail}`);
    const extra = names.filter((n) => !want.includes(n));
    assert.deepEqual(extra, [], `rank ${r} reported cases the test does not expect: ${extra.join(', ')}${tail}`);
  }
  return byRank;
}

/**
 * The cases of test/workers/collectives.js on `size` ranks (test/20 and
 * test/22 both run it): one per collective × dtype, then the large messages.
 */
function collectivesCases(size) {
  const { DTYPES } = require('./elements');
  const dtypes = Object.keys(DTYPES);
  const per = (op) => dtypes.map((d) => `${op} ${d}`);
  return [
    ...['allReduce', 'reduceScatter', 'allGather', 'broadcast', 'reduce'].flatMap(per),
    'barrier',
    ...per('allToAll'),
    ...per('allToAllV'),
    ...(size > 1 ? per('send/recv') : []),
    ...(size === 2 ? ['allReduce 64 MiB float32'] : []),
    ...(size > 1 ? ['separate', 'own block', 'next block'].map((w) => `reduceScatter 6 MiB blocks, output ${w}`) : []),
  ];
}

/** The numbers 0 … n - 1: the ranks of an n-rank run. */
const ranksOf = (n) => Array.from({ length: n }, (_, r) => r);

/** The launcher's output, for failure messages. */
const launched = (res) => `--- stderr ---\n${res.stderr}\n--- stdout ---\n${res.stdout}`;

module.exports = { parseCases, assertCases, ranksOf, launched, collectivesCases };
