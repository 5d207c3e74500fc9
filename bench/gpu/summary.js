// The short summary of a bench/gpu/run.sh run: each step's exit status and
// time, and the figures the GPU targets are judged on, read back from the
// files that run wrote. Exit status 1 where a step did not succeed.
//
//   node bench/gpu/summary.js OUT_DIR STATUS_FILE
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const [dir, statusFile] = process.argv.slice(2);
const CODEC_TARGET = 0.8; // codec kernels at least 0.8 x a device-to-device copy
const read = (name) => (fs.existsSync(path.join(dir, name)) ? fs.readFileSync(path.join(dir, name), 'utf8') : '');
const lines = [];
const say = (s) => lines.push(s);

const device = read('device.txt').split('\n').find((l) => /^GPU \d+:/.test(l)) || 'no GPU listed by nvidia-smi';
say(`# bench/gpu/run.sh on ${device}`);

say('## steps (exit status, seconds)');
const steps = fs.readFileSync(statusFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' '));
for (const [name, rc, s] of steps) say(`${name.padEnd(26)} ${rc === '0' ? 'ok' : rc === '77' ? 'skipped (77: no GPU)' : rc === '124' ? 'TIMED OUT' : `FAILED (${rc})`}  ${s} s`);
const failed = steps.filter(([, rc]) => rc !== '0').length;

say('## GPU suite (test/gpu)');
const tests = read('gpu-tests.txt');
say(['passing', 'failing', 'pending'].map((w) => `${(tests.match(new RegExp(`(\\d+) ${w}`)) || [0, 0])[1]} ${w}`).join(', '));
for (const skip of new Set(tests.match(/skipped: .*/g) || [])) say(`  ${skip}`);

say(`## codec kernels against a device-to-device copy (target >= ${CODEC_TARGET} x copy)`);
const selftest = read('selftest.txt');
say((selftest.match(/\d+ checks, \d+ failed.*/) || selftest.match(/collectives_cuda_selftest: skipped.*/) || ['selftest: no check count found'])[0]);
const copy = selftest.match(/^device-to-device copy\s+([\d.]+)\s+([\d.]+)/m);
if (copy) say(`copy: ${copy[2]} GB/s`);
const codecs = [...selftest.matchAll(/^((?:de)?quantize(?:-accumulate)? \S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$/gm)];
for (const [, name, , gbs, ratio] of codecs) say(`${name.padEnd(30)} ${gbs.padStart(8)} GB/s  ${ratio} x copy  ${Number(ratio) >= CODEC_TARGET ? 'met' : 'not met'}`);
if (codecs.length === 0) say('no codec throughput table (the selftest did not reach --bench)');

say('## per-call cost from JavaScript against C++ calling NCCL (target <= +5 us)');
const callCost = read('call-cost.json');
if (callCost) {
  const c = JSON.parse(callCost);
  if (c.cpp.skipped) say(`C++ loop not run: ${c.cpp.skipped}`);
  for (const r of c.rows) {
    const f = (x) => (x === null ? 'n/a' : x.toFixed(2));
    say(`${r.mode.padEnd(10)} C++ ${f(r.cpp_us)} us, JS ${f(r.js_us)} us, difference ${f(r.diff_us)} us: ${r.met === null ? 'not measured' : r.met ? 'met' : 'not met'}`);
  }
} else say('no call-cost.json (the step failed)');

say('## collectives-bench --backend nccl, 1 rank (busbw is 0 on 1 rank by nccl-tests\' factors, except broadcast: read algbw)');
const benches = read('nccl-bench.json') ? JSON.parse(read('nccl-bench.json')) : [];
for (const b of benches) {
  const rows = b.rows || [];
  const last = rows[rows.length - 1];
  const wrong = rows.reduce((n, r) => n + (r.outOfPlace?.wrong || 0) + (r.inPlace?.wrong || 0), 0);
  if (!last) continue;
  // Broadcast has no out-of-place cell and all-to-all on NCCL no in-place one.
  const cell = last.outOfPlace || last.inPlace;
  const where = last.outOfPlace ? 'out of place' : 'in place';
  say(`${b.header.op.padEnd(15)} ${rows.length} sizes, #wrong ${wrong}; at ${last.bytes} B ${where}: ${cell.timeUs.toFixed(1)} us, algbw ${cell.algbw.toFixed(2)} GB/s, busbw ${cell.busbw.toFixed(2)} GB/s`);
}
if (benches.length === 0) say('no collectives-bench results');

process.stdout.write(`${lines.join('\n')}\n`);
process.exit(failed > 0 ? 1 : 0);
