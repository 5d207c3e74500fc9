#!/usr/bin/env node
// The addon's overhead over raw Gloo, measured side by side in one run:
// `npm run bench:overhead [-- --np 2,4 --ops all_reduce,reduce_scatter --rounds 2]`.
//
// For each world size and operation, the addon is run first (bench/overhead-rank.js,
// through collectives-run) and reports the algorithm it chose for each size; then
// bench/reference/gloo-reference runs the same sizes with the same algorithm and
// mode, calling Gloo from C++. Rounds alternate the two; each side keeps its best
// round, so a burst of noise on a shared machine hits neither side alone.
// The inline column is one call awaited at a time on a communicator whose inline
// path takes every size (the call runs on the JavaScript thread); '-' where the
// call runs on the asynchronous pairs, which the inline path never takes.
'use strict';

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Command } = require('commander');

const ROOT = path.resolve(__dirname, '..');
const REFERENCE = path.join(ROOT, 'build', 'reference', 'gloo-reference');
const SIZES = [8, 1024, 4096, 65536, 1 << 20, 4 << 20, 16 << 20];

function iterationsFor(bytes) {
  if (bytes <= 65536) return 500;
  if (bytes <= 1 << 20) return 100;
  if (bytes <= 4 << 20) return 30;
  return 10;
}

function list(value) {
  return value.split(',').filter(Boolean);
}

function buildReference() {
  if (fs.existsSync(REFERENCE)) return;
  process.stderr.write('building bench/reference (raw Gloo) ...\n');
  const build = path.dirname(REFERENCE);
  execFileSync('cmake', ['-S', path.join(ROOT, 'bench', 'reference'), '-B', build, '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'inherit' });
  execFileSync('cmake', ['--build', build], { stdio: 'inherit' });
}

// The reference's mode for the algorithm the addon reported.
function referenceMode(op, algorithm) {
  const m = /^(.*?)( busy-poll)?(, (\d+)-byte chunks)?$/.exec(algorithm);
  const name = m[1];
  const busy = Boolean(m[2]);
  const chunkBytes = m[4] ? Number(m[4]) : 0;
  const modes = {
    'async ring': 'async-ring',
    'async alltoall+reduce': 'async',
    async: 'async',
    'sync ring': 'sync-ring',
    'sync halving-doubling': 'sync-hd',
    'sync one-to-all': 'sync',
    'sync all-to-one': 'sync',
  };
  if (!(name in modes)) throw new Error(`no reference mode for ${op} '${algorithm}'`);
  return { mode: modes[name], busy, chunkBytes };
}

// Sizes the operation can split evenly over n ranks of float32.
function sizesFor(op, n) {
  const unit = op === 'all_reduce' || op === 'broadcast' ? 4 : 4 * n;
  return [...new Set(SIZES.map((b) => Math.ceil(b / unit) * unit))];
}

function runAddon(np, op, sizes) {
  const res = spawnSync(
    process.execPath,
    [path.join(ROOT, 'dist', 'launch', 'cli.js'), '--nproc-per-node', String(np), '--master-port', '0', '--no-prefix',
      path.join(__dirname, 'overhead-rank.js'), op, sizes.join(','), sizes.map(iterationsFor).join(',')],
    { encoding: 'utf8', timeout: 600000 },
  );
  if (res.status !== 0) throw new Error(`addon run failed (${op}, ${np} ranks):\n${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').pop());
}

function runReference(np, op, { mode, busy, chunkBytes }, sizes) {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'gloo-reference-'));
  const args = ['--store', store, '--op', op, '--mode', mode, '--busy-poll', busy ? '1' : '0', '--chunk-bytes', String(chunkBytes),
    '--sizes', sizes.join(','), '--iters', sizes.map(iterationsFor).join(','), '--warmup', '5'];
  // The ranks must run at once: start them as children of one shell.
  const script = Array.from({ length: np }, (_, r) => `RANK=${r} WORLD_SIZE=${np} "$0" "$@" ${r === 0 ? '' : '>/dev/null'} &`).join('\n') + '\nwait';
  const res = spawnSync('bash', ['-c', script, REFERENCE, ...args], { encoding: 'utf8', timeout: 600000 });
  fs.rmSync(store, { recursive: true, force: true });
  if (res.status !== 0) throw new Error(`reference run failed (${op} ${mode}, ${np} ranks):\n${res.stderr}`);
  const times = new Map();
  for (const line of res.stdout.trim().split('\n')) {
    const [bytes, us] = line.split(' ').map(Number);
    times.set(bytes, us);
  }
  return times;
}

function measure(np, op, rounds) {
  const sizes = sizesFor(op, np);
  const best = new Map(sizes.map((b) => [b, { raw: Infinity, queued: Infinity, awaited: Infinity, inline: Infinity, algorithm: '' }]));
  for (let round = 0; round < rounds; round++) {
    const addon = runAddon(np, op, sizes);
    for (const row of addon) {
      const b = best.get(row.bytes);
      b.algorithm = row.algorithm;
      b.queued = Math.min(b.queued, row.queued);
      b.awaited = Math.min(b.awaited, row.awaited);
      b.inline = row.inline === null ? null : Math.min(b.inline ?? Infinity, row.inline);
    }
    const byMode = new Map();
    for (const row of addon) {
      const key = row.algorithm;
      if (!byMode.has(key)) byMode.set(key, []);
      byMode.get(key).push(row.bytes);
    }
    for (const [algorithm, group] of byMode) {
      for (const [bytes, us] of runReference(np, op, referenceMode(op, algorithm), group)) {
        const b = best.get(bytes);
        b.raw = Math.min(b.raw, us);
      }
    }
  }
  return sizes.map((bytes) => ({ np, op, bytes, ...best.get(bytes) }));
}

function main() {
  const o = new Command('bench:overhead')
    .option('--np <list>', 'world sizes', '2,4')
    .option('--ops <list>', 'operations', 'all_reduce,reduce_scatter,all_gather')
    .option('--rounds <n>', 'alternating rounds per side (best kept)', '2')
    .option('--json <file>', 'also write the rows as JSON')
    .parse()
    .opts();
  buildReference();
  const rows = [];
  console.log(`# addon vs raw Gloo, float32, ${os.cpus().length} CPUs, ${os.hostname()}, loopback, best of ${o.rounds} alternating rounds`);
  console.log('# queued: n calls issued, then awaited (nccl-tests); awaited: one call at a time; both on the queue thread');
  console.log('# inline: one call at a time on the JavaScript thread (the inline path, forced on at every size); +us: over raw');
  console.log('#  np  op               bytes  algorithm                     raw(us)  queued(us)   ratio   +us  awaited(us)  inline(us)   ratio   +us');
  for (const np of list(o.np).map(Number)) {
    for (const op of list(o.ops)) {
      for (const r of measure(np, op, Number(o.rounds))) {
        rows.push(r);
        console.log(
          `${String(r.np).padStart(5)}  ${r.op.padEnd(15)}${String(r.bytes).padStart(9)}  ${r.algorithm.padEnd(28)}` +
            `${r.raw.toFixed(1).padStart(9)}${r.queued.toFixed(1).padStart(12)}${(r.queued / r.raw).toFixed(2).padStart(8)}` +
            `${(r.queued - r.raw).toFixed(1).padStart(7)}${r.awaited.toFixed(1).padStart(13)}` +
            (r.inline === null
              ? `${'-'.padStart(12)}${'-'.padStart(8)}${'-'.padStart(7)}`
              : `${r.inline.toFixed(1).padStart(12)}${(r.inline / r.raw).toFixed(2).padStart(8)}${(r.inline - r.raw).toFixed(1).padStart(7)}`),
        );
      }
    }
  }
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(rows, null, 2));
}

main();
