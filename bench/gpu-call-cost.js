#!/usr/bin/env node
// The cost of issuing a collective from JavaScript on a GPU:
// `node bench/gpu-call-cost.js [--iters 10000] [--warmup 100] [--rounds 5] [--json FILE]`.
//
// One rank (bench/gpu-call-cost-rank.js through collectives-run) does N
// one-element float32 all-reduces on a DeviceBuffer; bench/reference/nccl_loop.cc
// (build/Release/nccl-loop) makes the same NCCL calls from C++. Both time a
// pipelined mode (issue all, then wait once) and an awaited mode (wait after
// each). Rounds alternate the two sides and each keeps its best round, so a
// burst of noise hits neither alone. The target: JavaScript at most 5 us per
// call above C++. The C++ loop links the real CUDA runtime; where it cannot
// run (no GPU, no NCCL, not built) the table says why and shows the
// JavaScript side alone.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Command } = require('commander');

const ROOT = path.resolve(__dirname, '..');
const LOOP = path.join(ROOT, 'build', 'Release', 'nccl-loop');
const TARGET_US = 5;
const MODES = ['pipelined', 'awaited'];

function positive(flag) {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1) throw new Error(`gpu-call-cost: ${flag}: expected a positive integer, got '${value}'`);
    return n;
  };
}

function runJs(iters, warmup) {
  const res = spawnSync(
    process.execPath,
    [path.join(ROOT, 'dist', 'launch', 'cli.js'), '--nproc-per-node', '1', '--master-port', '0', '--no-prefix',
      path.join(__dirname, 'gpu-call-cost-rank.js'), String(iters), String(warmup)],
    // stderr passes through: the rank's errors, and what the NCCL library says at exit.
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600000 },
  );
  if (res.status !== 0) throw new Error(`gpu-call-cost: the JavaScript rank failed (exit ${res.status})\n${res.stdout}`);
  const out = JSON.parse(res.stdout.trim().split('\n').pop());
  for (const mode of MODES) {
    if (out.resolved[mode] !== iters) throw new Error(`gpu-call-cost: ${mode}: ${out.resolved[mode]} calls resolved, expected ${iters}`);
  }
  return out;
}

/** The C++ loop's result, or { skipped: reason } where it cannot run here. */
function runCpp(iters, warmup) {
  if (!fs.existsSync(LOOP)) return { skipped: `${path.relative(ROOT, LOOP)} is not built (it is built with the CUDA part: nvcc found, COLLECTIVES_CUDA not 0)` };
  const res = spawnSync(LOOP, ['--iters', String(iters), '--warmup', String(warmup)], { encoding: 'utf8', timeout: 600000 });
  const said = `${res.stderr}`.trim().replace(/^nccl-loop: (skipped: )?/, '');
  if (res.status === 77) return { skipped: `nccl-loop: ${said}` };
  if (res.status !== 0) return { skipped: `nccl-loop failed (exit ${res.status ?? res.signal}): ${said}` };
  return JSON.parse(res.stdout.trim().split('\n').pop());
}

function fmt(us) {
  return us === null ? 'n/a' : us.toFixed(2);
}

function main() {
  const o = new Command('gpu-call-cost')
    .option('--iters <n>', 'calls per timed run', positive('--iters'), 10000)
    .option('--warmup <n>', 'calls before timing', positive('--warmup'), 100)
    .option('--rounds <n>', 'alternating rounds per side (best kept)', positive('--rounds'), 5)
    .option('--json <file>', 'also write the results as JSON')
    .parse()
    .opts();
  const { backends, versions } = require(ROOT);
  const b = backends();
  if (!b.cuda.available || !b.nccl.available) {
    console.error(`gpu-call-cost: needs a GPU and NCCL: ${!b.cuda.available ? `CUDA: ${b.cuda.reason}` : `NCCL: ${b.nccl.reason}`}`);
    process.exit(1);
  }

  const best = { js: { pipelined_us: Infinity, awaited_us: Infinity }, cpp: { pipelined_us: Infinity, awaited_us: Infinity } };
  const rounds = { js: [], cpp: [] };
  let cppSkipped;
  let cppInfo = {};
  for (let round = 0; round < o.rounds; round++) {
    const js = runJs(o.iters, o.warmup);
    rounds.js.push(js);
    if (!cppSkipped) {
      const cpp = runCpp(o.iters, o.warmup);
      if (cpp.skipped) cppSkipped = cpp.skipped;
      else {
        rounds.cpp.push(cpp);
        cppInfo = { device: cpp.device, nccl: cpp.nccl, library: cpp.library };
      }
    }
    for (const mode of MODES) {
      best.js[`${mode}_us`] = Math.min(best.js[`${mode}_us`], js[`${mode}_us`]);
      const last = rounds.cpp[rounds.cpp.length - 1];
      if (!cppSkipped && last) best.cpp[`${mode}_us`] = Math.min(best.cpp[`${mode}_us`], last[`${mode}_us`]);
    }
  }

  const rows = MODES.map((mode) => {
    const js = best.js[`${mode}_us`];
    // null, not undefined, where the C++ loop did not run: the JSON keeps the field.
    const cpp = cppSkipped ? null : best.cpp[`${mode}_us`];
    const diff = cpp === null ? null : js - cpp;
    return { mode, cpp_us: cpp, js_us: js, diff_us: diff, target_us: TARGET_US, met: diff === null ? null : diff <= TARGET_US };
  });

  const v = versions();
  console.log(`# gpu-call-cost: ${o.iters} one-element float32 all-reduces on 1 rank, best of ${o.rounds} alternating rounds (warm-up ${o.warmup})`);
  console.log(`# ${cppInfo.device || 'device 0'}, CUDA ${b.cuda.version}, NCCL ${b.nccl.version} (${b.nccl.library}), Node ${v.node}, ${os.cpus().length} CPUs, ${os.hostname()}`);
  console.log('# pipelined: N calls issued, then awaited; awaited: each call awaited before the next');
  if (cppSkipped) console.log(`# C++ loop not run: ${cppSkipped}`);
  console.log('# mode        C++(us/call)  JS(us/call)  difference  target      result');
  for (const r of rows) {
    const diff = r.diff_us === null ? 'n/a' : `${r.diff_us >= 0 ? '+' : ''}${r.diff_us.toFixed(2)}`;
    const result = r.met === null ? 'not measured' : r.met ? 'met' : 'not met';
    console.log(`  ${r.mode.padEnd(10)}${fmt(r.cpp_us).padStart(14)}${fmt(r.js_us).padStart(13)}${diff.padStart(12)}  <= +${TARGET_US} us  ${result}`);
  }
  if (o.json) {
    const report = { iters: o.iters, warmup: o.warmup, rounds: o.rounds, target_us: TARGET_US, node: v.node, cuda: b.cuda.version, nccl: b.nccl.version, ncclLibrary: b.nccl.library, cpp: cppSkipped ? { skipped: cppSkipped } : cppInfo, rows, measured: rounds };
    fs.writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
  }
}

try {
  main();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
