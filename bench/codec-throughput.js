// Codec throughput on one core, in GB/s of input, beside a memcpy of the same
// bytes measured in the same run; then a block-size sweep of error and speed
// (how the default block size was chosen).
//
//   node bench/codec-throughput.js [--mib 32] [--reps 7]
'use strict';

const os = require('node:os');
const { quantize, dequantize, quantizedSize, QUANT_FORMATS } = require('..');

function bestSeconds(fn, reps) {
  fn();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return best;
}

/** Gaussian-like test data (sum of uniforms), deterministic. */
function testData(n) {
  const x = new Float32Array(n);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) x[i] = u() + u() + u() + u() - 2;
  return x;
}

/**
 * Rows { name, gbps, ratio } for quantize / dequantize of every format. The
 * cases run in interleaved rounds and each keeps its best round, so a noisy
 * moment on a shared machine hits memcpy and the codecs alike.
 */
function throughput({ mib = 32, reps = 7, blockSize = 256 } = {}) {
  const n = (mib << 20) / 4;
  const x = testData(n);
  const copy = new Float32Array(n);
  const gb = (n * 4) / 1e9;
  const cases = [{ name: 'memcpy (TypedArray.set)', fn: () => copy.set(x) }];
  for (const format of QUANT_FORMATS) {
    const output = new Uint8Array(quantizedSize(n, { format, blockSize }));
    const y = new Float32Array(n);
    const q = { format, blockSize, count: n, bytes: output };
    cases.push({ name: `${format} quantize`, fn: () => quantize(x, { format, blockSize, output }) });
    cases.push({ name: `${format} dequantize`, fn: () => dequantize(q, { output: y }) });
    if (format === 'int8') {
      const r = new Float32Array(n);
      cases.push({ name: `${format} quantize, stochastic`, fn: () => quantize(x, { format, blockSize, output, stochastic: { seed: 1 } }) });
      cases.push({ name: `${format} quantize, error feedback`, fn: () => quantize(x, { format, blockSize, output, errorFeedback: r }) });
    }
  }
  const best = cases.map(() => Infinity);
  for (const c of cases) c.fn();
  for (let round = 0; round < reps; round++) {
    cases.forEach((c, i) => {
      best[i] = Math.min(best[i], bestSeconds(c.fn, 1));
    });
  }
  const memcpy = gb / best[0];
  return cases.map((c, i) => ({ name: c.name, gbps: gb / best[i], ratio: gb / best[i] / memcpy }));
}

/** Rows { format, blockSize, rmsRel, wireBitsPerElement, gbps } over block sizes. */
function blockSweep({ mib = 8, reps = 3, sizes = [32, 64, 128, 256, 512, 1024, 4096] } = {}) {
  const n = (mib << 20) / 4;
  const x = testData(n);
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[i] * x[i];
  const rows = [];
  for (const format of ['int8', 'int4', 'fp8e4m3']) {
    for (const blockSize of sizes) {
      const output = new Uint8Array(quantizedSize(n, { format, blockSize }));
      const gbps = (n * 4) / 1e9 / bestSeconds(() => quantize(x, { format, blockSize, output }), reps);
      const y = dequantize({ format, blockSize, count: n, bytes: output });
      let se = 0;
      for (let i = 0; i < n; i++) se += (x[i] - y[i]) ** 2;
      rows.push({ format, blockSize, rmsRel: Math.sqrt(se / ss), wireBitsPerElement: (output.length * 8) / n, gbps });
    }
  }
  return rows;
}

function main() {
  const args = process.argv.slice(2);
  const opt = (name, d) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : d);
  const mib = opt('--mib', 32);
  const reps = opt('--reps', 7);
  const isa = require('../dist/core/loader').loadAddon().quant.instructionSet;
  console.log(`# codec throughput: ${mib} MiB float32 input, one core, block 256, best of ${reps} interleaved rounds; ${os.cpus()[0].model}, loops: ${isa}`);
  console.log('# what                              GB/s   x memcpy');
  for (const r of throughput({ mib, reps })) console.log(`${r.name.padEnd(34)} ${r.gbps.toFixed(2).padStart(6)} ${r.ratio.toFixed(2).padStart(9)}`);
  console.log('\n# block-size sweep: 8 MiB of sum-of-4-uniforms data; relative RMS error, wire bits per element, quantize GB/s');
  console.log('# format   block   rms-rel-err  bits/elem   GB/s');
  for (const r of blockSweep({ reps: Math.min(reps, 3) })) {
    console.log(`${r.format.padEnd(9)} ${String(r.blockSize).padStart(6)} ${r.rmsRel.toExponential(3).padStart(12)} ${r.wireBitsPerElement.toFixed(3).padStart(10)} ${r.gbps.toFixed(2).padStart(6)}`);
  }
}

module.exports = { throughput, blockSweep };
if (require.main === module) main();
