'use strict';
// DiLoCo: the fragment schedule alone, then real ranks through the launcher
// (test/workers/diloco.js) against plain averaging, torch's Nesterov formula in float64, a
// known optimum, each rank's hash of θ_global and a run that did not stop.

const assert = require('node:assert/strict');
const { FragmentSchedule } = require('../dist/training');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, launched } = require('./helpers/cases');

const MODES = ['sync', 'sync, streaming (P = 2, τ = 1, α = 0.5)', 'eager (τ = 3)', 'delayed'];
const FORMATS = ['float32', 'int8', 'int4', 'fp8'];
const CASES = [
  'H = 1, outer lr 1, momentum 0 equals parameter averaging bit for bit',
  'outer Nesterov equals torch.optim.SGD(nesterov=True) in float64',
  'fragments: each parameter once per H steps, all-reduce in flight during τ steps, bytes',
  ...MODES.flatMap((m) => FORMATS.map((f) => `${m}, ${f}: optimum reached, θ_global bit-identical on every rank`)),
  'a θ_global that differs on one rank is STATE_MISMATCH on every rank',
  ...['sync', 'streaming int8', 'eager int4', 'delayed'].map((n) => `checkpoint mid-run, resume: identical result (${n})`),
  'bad options are refused naming the option',
];

/** The events of steps 1 … steps, as [step, fragment, kind]. */
function events(o, steps) {
  const s = new FragmentSchedule(o);
  const out = [];
  for (let t = 1; t <= steps; t++) for (const e of s.eventsAt(t)) out.push([t, e.fragment, e.kind]);
  return out;
}

describe('98 DiLoCo', function () {
  describe('the fragment schedule', function () {
    it('plain DiLoCo: launch and land at every H-th step', function () {
      assert.deepEqual(events({ syncEvery: 3, fragments: 1, fragmentSyncDelay: 0, mode: 'sync' }, 7), [
        [3, 0, 'launch'],
        [3, 0, 'land'],
        [6, 0, 'launch'],
        [6, 0, 'land'],
      ]);
    });

    it('streaming: fragments staggered by H/P, each launched τ steps before its sync point, each once per H', function () {
      const ev = events({ syncEvery: 8, fragments: 4, fragmentSyncDelay: 1, mode: 'sync' }, 16);
      const lands = ev.filter((e) => e[2] === 'land').map((e) => [e[0], e[1]]);
      assert.deepEqual(lands, [[2, 0], [4, 1], [6, 2], [8, 3], [10, 0], [12, 1], [14, 2], [16, 3]]);
      const launches = ev.filter((e) => e[2] === 'launch').map((e) => [e[0], e[1]]);
      assert.deepEqual(launches, lands.map(([t, f]) => [t - 1, f]));
    });

    it('eager: launched at the sync point, landed τ steps later', function () {
      const ev = events({ syncEvery: 6, fragments: 2, fragmentSyncDelay: 2, mode: 'eager' }, 12);
      assert.deepEqual(ev, [
        [3, 0, 'launch'],
        [5, 0, 'land'],
        [6, 1, 'launch'],
        [8, 1, 'land'],
        [9, 0, 'launch'],
        [11, 0, 'land'],
        [12, 1, 'launch'],
      ]);
    });

    it("delayed: each round lands at the fragment's next sync point, before the next launch", function () {
      const ev = events({ syncEvery: 4, fragments: 1, fragmentSyncDelay: 4, mode: 'delayed' }, 12);
      assert.deepEqual(ev, [
        [4, 0, 'launch'],
        [8, 0, 'land'],
        [8, 0, 'launch'],
        [12, 0, 'land'],
        [12, 0, 'launch'],
      ]);
    });
  });

  it('on 4 ranks: equals averaging and torch, converges in every mode and format, bit-identical θ_global, resumes exactly', async function () {
    this.timeout(180000);
    const res = await launchWorker('diloco.js', { nproc: 4, killAfterMs: 170000 });
    assertCases(res.stdout, [0, 1, 2, 3], CASES, launched(res));
    assertSucceeded(res, 'diloco worker on 4 ranks');
  });
});
