'use strict';
// Every collective × every dtype across real rank processes started by the
// launcher; test/workers/collectives.js does the checking on each rank.

const assert = require('node:assert/strict');
const { float16Bits, bfloat16Bits } = require('./helpers/elements');
const { launchWorker, assertSucceeded } = require('./helpers/launch');
const { assertCases, collectivesCases, ranksOf, launched } = require('./helpers/cases');

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

  for (const worldSize of [1, 2, 3, 4]) {
    it(`every collective and dtype agrees bit for bit on ${worldSize} rank${worldSize > 1 ? 's' : ''}`, async function () {
      this.timeout(90000);
      const res = await launchWorker('collectives.js', { nproc: worldSize, killAfterMs: 80000 });
      assertCases(res.stdout, ranksOf(worldSize), collectivesCases(worldSize), launched(res));
      assertSucceeded(res, `collectives on ${worldSize} ranks`);
    });
  }
});
