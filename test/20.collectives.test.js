'use strict';
// Every collective × every dtype across real rank processes started by the
// launcher; test/workers/collectives.js does the checking on each rank.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const { float16Bits, bfloat16Bits } = require('./helpers/elements');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, collectivesCases, parseCases, ranksOf, launched } = require('./helpers/cases');

describe('20 collectives', function () {
  describe('the half-precision encoder the workers use', function () {
    it('matches known float16 bit patterns', function () {
      const known = { 0: 0x0000, 1: 0x3c00, 2: 0x4000, 3: 0x4200, [-2]: 0xc000, 255: 0x5bf8, 256: 0x5c00, 1000: 0x63d0, 2048: 0x6800 };
      for (const [n, bits] of Object.entries(known)) assert.equal(float16Bits(Number(n)), bits, `float16 of ${n}`);
    });

    it('matches the top half of float32 for bfloat16', function () {
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      for (let n = -256; n <= 256; n++) {
        f[0] = n;
        assert.equal(bfloat16Bits(n), u[0] >>> 16, `bfloat16 of ${n}`);
      }
    });

    it('refuses values it cannot encode exactly', function () {
      assert.throws(() => float16Bits(0.5), RangeError);
      assert.throws(() => float16Bits(2049), RangeError);
      assert.throws(() => bfloat16Bits(257), RangeError);
    });
  });

  describe('the case lines the workers print', function () {
    // A rank script run without the launcher: what its Checker prints.
    function rank(body) {
      const helper = JSON.stringify(require.resolve('./helpers/worker'));
      const code = `const { Checker, run } = require(${helper}); run(async () => { const check = new Checker(3); ${body} });`;
      return spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    }

    it('reads the launcher\'s prefixes and bare lines, one list of cases per rank', function () {
      const out = ['[rank1]: {"case":"a","ok":true,"detail":"","rank":1}', '[rank0]: other output', '{"case":"b","ok":false,"detail":"x","rank":2}', '[rank1]: {"case":"c","ok":true,"detail":""}'].join('\n');
      const got = parseCases(out);
      assert.deepEqual([...got.keys()], [1, 2]);
      assert.deepEqual(got.get(1).map((c) => c.case), ['a', 'c']);
      assert.equal(got.get(2)[0].detail, 'x');
    });

    it('fails a rank that reported nothing, naming the missing cases, and names a failed case and its rank', function () {
      assert.throws(() => assertCases('', [0], ['allReduce int8', 'barrier']), /rank 0 never reported 2 of 2 cases: allReduce int8, barrier/);
      const out = '[rank1]: {"case":"barrier","ok":false,"detail":"left early"}\n[rank0]: {"case":"barrier","ok":true,"detail":""}';
      assert.throws(() => assertCases(out, [0, 1], ['barrier']), /barrier on rank 1: left early/);
      assert.throws(() => assertCases(out.split('\n')[1], [0], []), /cases the test does not expect: barrier/);
    });

    it('prints one line per case as it ends, and a failing line for the case an error ended', function () {
      const r = rank(`check.begin('first'); check.equal('one', 1, 1); check.begin('second'); check.equal('two', 2, 3); check.begin('third'); throw new Error('boom');`);
      assert.equal(r.status, 1, r.stderr);
      const cases = parseCases(r.stdout).get(3);
      assert.deepEqual(cases.map((c) => [c.case, c.ok, c.checks]), [['first', true, 1], ['second', false, 1], ['third', false, 0]]);
      assert.match(cases[1].detail, /two: got 2, expected 3/);
      assert.match(cases[2].detail, /boom/);
    });
  });

  for (const worldSize of [1, 2, 3, 4]) {
    it(`every collective and dtype agrees bit for bit on ${worldSize} rank${worldSize > 1 ? 's' : ''}`, async function () {
      this.timeout(90000);
      const res = await launchWorker('collectives.js', { nproc: worldSize, killAfterMs: 80000 });
      assertCases(res.stdout, ranksOf(worldSize), collectivesCases(worldSize), launched(res));
      assertSucceeded(res, `collectives on ${worldSize} ranks`);
    });
  }
});
