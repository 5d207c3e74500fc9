#!/usr/bin/env node
// `npm run bench:mpi`: the MPI engine against Open MPI's own C loop
// (bench/reference/mpi_reference.c) and against the Gloo engine, in one run,
// float32 all-reduce in place at 8 B, 4 KiB, 1 MiB and 32 MiB on 2 ranks.
// The engine's rank is bench/overhead-rank.js (the same timing as the
// references: warm-up, barrier, timed calls), started by mpirun for MPI and
// by collectives-run for Gloo. Two engine timings per size:
//   queued:  every call issued, then awaited together (the C loop's pace);
//   awaited: each call awaited before the next is issued (one JS caller).
// busbw is nccl-tests' (bytes / time × 2(n-1)/n). bench/RESULTS.md records
// a run and whether the targets were met:
//   32 MiB: engine busbw >= 0.7 × the C loop's and >= 3 × the Gloo engine's;
//   8 B awaited from JS <= 2 × the C loop's time + 5 us.
// --oversubscribe-check adds 4 ranks (on fewer cores: oversubscribed) with
// and without --mca mpi_yield_when_idle 1.
'use strict';

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Command } = require('commander');

const ROOT = path.join(__dirname, '..');
const SOURCE = path.join(__dirname, 'reference', 'mpi_reference.c');
const REFERENCE = path.join(ROOT, 'build', 'reference', 'mpi-reference');
const RANK = path.join(__dirname, 'overhead-rank.js');
const SIZES = [8, 4096, 1 << 20, 32 << 20];
const ITERS = { 8: 2000, 4096: 2000, [1 << 20]: 200, [32 << 20]: 20 };

function buildReference() {
  if (fs.existsSync(REFERENCE) && fs.statSync(REFERENCE).mtimeMs >= fs.statSync(SOURCE).mtimeMs) return;
  fs.mkdirSync(path.dirname(REFERENCE), { recursive: true });
  process.stderr.write('building bench/reference/mpi_reference.c (mpicc) ...\n');
  execFileSync('mpicc', ['-O2', '-o', REFERENCE, SOURCE], { stdio: 'inherit' });
}

function mpirunFlags(np, extra) {
  const flags = ['-np', String(np)];
  if (typeof process.getuid === 'function' && process.getuid() === 0) flags.push('--allow-run-as-root');
  if (np > os.availableParallelism()) flags.push('--oversubscribe');
  return [...flags, ...extra];
}

function parseLines(stdout) {
  const times = new Map();
  for (const line of stdout.trim().split('\n')) {
    const [bytes, us] = line.split(' ').map(Number);
    if (Number.isFinite(bytes) && Number.isFinite(us)) times.set(bytes, us);
  }
  return times;
}

function check(res, what) {
  if (res.status !== 0) throw new Error(`${what} failed (exit ${res.status}):\n${res.stderr}\n${res.stdout}`);
}

function runC(np, sizes, extra, nonblocking) {
  const args = [...mpirunFlags(np, extra), REFERENCE, '--op', 'all_reduce', '--sizes', sizes.join(','),
    '--iters', sizes.map((b) => ITERS[b]).join(','), '--warmup', '5', '--nonblocking', nonblocking ? '1' : '0'];
  const res = spawnSync('mpirun', args, { encoding: 'utf8', timeout: 600000 });
  check(res, `mpirun ${args.join(' ')}`);
  return parseLines(res.stdout);
}

function engineRows(stdout) {
  const rows = JSON.parse(stdout.trim().split('\n').pop());
  return new Map(rows.map((r) => [r.bytes, r]));
}

function runMpiEngine(np, sizes, extra) {
  const env = { ...process.env, COLLECTIVES_ENGINE: 'mpi', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(20000 + (process.pid % 20000)), COLLECTIVES_TOKEN: `bench-${process.pid}` };
  const args = [...mpirunFlags(np, extra), process.execPath, RANK, 'all_reduce', sizes.join(','), sizes.map((b) => ITERS[b]).join(',')];
  const res = spawnSync('mpirun', args, { encoding: 'utf8', timeout: 600000, env });
  check(res, `mpirun ${args.join(' ')}`);
  return engineRows(res.stdout);
}

function runGloo(np, sizes) {
  const env = { ...process.env, COLLECTIVES_ENGINE: 'gloo' };
  const res = spawnSync(
    process.execPath,
    [path.join(ROOT, 'dist', 'launch', 'cli.js'), '--nproc-per-node', String(np), '--master-port', '0', '--no-prefix', RANK,
      'all_reduce', sizes.join(','), sizes.map((b) => ITERS[b]).join(',')],
    { encoding: 'utf8', timeout: 600000, env },
  );
  check(res, 'the Gloo engine run');
  return engineRows(res.stdout);
}

const busbw = (bytes, us, np) => (bytes / us / 1e3) * ((2 * (np - 1)) / np);
const fmt = (x, w, d = 1) => x.toFixed(d).padStart(w);

function table(np, sizes, c, cNb, mpi, gloo) {
  console.log(`# ${np} ranks, float32 all-reduce in place; time in us per call (busbw GB/s)`);
  console.log('#       bytes   C loop        C Iallreduce   MPI queued     MPI awaited    Gloo queued    Gloo awaited');
  const rows = [];
  for (const b of sizes) {
    const cells = [c.get(b), cNb.get(b), mpi.get(b).queued, mpi.get(b).awaited, gloo ? gloo.get(b).queued : NaN, gloo ? gloo.get(b).awaited : NaN];
    console.log(`${String(b).padStart(13)}${cells.map((us) => `${fmt(us, 9)} (${fmt(busbw(b, us, np), 5, 2)})`).join('')}`);
    rows.push({ bytes: b, c: cells[0], cNonblocking: cells[1], mpiQueued: cells[2], mpiAwaited: cells[3], glooQueued: cells[4], glooAwaited: cells[5] });
  }
  return rows;
}

function main() {
  const o = new Command('bench:mpi')
    .option('--np <n>', 'ranks', '2')
    .option('--mpirun-args <args>', 'extra mpirun flags for both MPI runs (space separated)', '')
    .option('--oversubscribe-check', 'also run 4 ranks with and without --mca mpi_yield_when_idle 1')
    .option('--json <file>', 'also write the rows as JSON')
    .parse()
    .opts();
  buildReference();
  const np = Number(o.np);
  const extra = o.mpirunArgs.split(' ').filter(Boolean);
  console.log(`# MPI engine vs Open MPI's C loop vs the Gloo engine: ${os.cpus().length} CPUs (${os.cpus()[0].model.trim()}), ${os.hostname()}, Node ${process.version}`);
  console.log(`# mpirun ${mpirunFlags(np, extra).join(' ')} ...`);
  const c = runC(np, SIZES, extra, false);
  const cNb = runC(np, SIZES, extra, true);
  const mpi = runMpiEngine(np, SIZES, extra);
  const gloo = runGloo(np, SIZES);
  const rows = table(np, SIZES, c, cNb, mpi, gloo);
  const big = rows.find((r) => r.bytes === 32 << 20);
  const small = rows.find((r) => r.bytes === 8);
  const bw = (r, k) => busbw(r.bytes, r[k], np);
  console.log('#');
  console.log(`# target: 32 MiB MPI busbw >= 0.7 x C loop: ${fmt(bw(big, 'mpiQueued'), 0, 2)} vs ${fmt(0.7 * bw(big, 'c'), 0, 2)} GB/s -> ${bw(big, 'mpiQueued') >= 0.7 * bw(big, 'c') ? 'met' : 'NOT met'}`);
  console.log(`# target: 32 MiB MPI busbw >= 3 x Gloo engine: ${fmt(bw(big, 'mpiQueued'), 0, 2)} vs ${fmt(3 * bw(big, 'glooQueued'), 0, 2)} GB/s -> ${bw(big, 'mpiQueued') >= 3 * bw(big, 'glooQueued') ? 'met' : 'NOT met'}`);
  console.log(`# target: 8 B awaited <= 2 x C loop + 5 us: ${fmt(small.mpiAwaited, 0, 2)} vs ${fmt(2 * small.c + 5, 0, 2)} us -> ${small.mpiAwaited <= 2 * small.c + 5 ? 'met' : 'NOT met'}`);
  const out = { np, rows };
  if (o.oversubscribeCheck) {
    const few = [8, 1 << 20];
    out.oversubscribed = {};
    for (const [name, flags] of [['default', []], ['mpi_yield_when_idle 1', ['--mca', 'mpi_yield_when_idle', '1']]]) {
      console.log('#');
      console.log(`# 4 ranks on ${os.availableParallelism()} cores, ${name}`);
      const c4 = runC(4, few, [...extra, ...flags], false);
      const nb4 = runC(4, few, [...extra, ...flags], true);
      const mpi4 = runMpiEngine(4, few, [...extra, ...flags]);
      out.oversubscribed[name] = table(4, few, c4, nb4, mpi4, null);
    }
  }
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(out, null, 2)}\n`);
}

main();
