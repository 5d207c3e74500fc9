#!/usr/bin/env node
// Gloo's default (asynchronous) mode against the policy this library uses
// ('auto': synchronous pairs where Gloo has an algorithm for them), every
// operation, side by side in one run: `npm run bench:modes [-- --np 2,4]`.
// Each cell is collectives-bench's out-of-place time (nccl-tests' way: -n
// calls issued, then awaited); the two modes alternate per operation.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Command } = require('commander');

const CLI = path.join(__dirname, '..', 'dist', 'bench', 'cli.js');

function bench(op, np, mode, o) {
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-modes-')), 'out.json');
  const args = [CLI, op, '--np', String(np), '-b', o.minbytes, '-e', o.maxbytes, '-f', o.factor, '-n', o.iters, '-w', '5', '-c', '0', '--json', json];
  const res = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, COLLECTIVES_GLOO_MODE: mode },
    timeout: 900000,
  });
  if (res.status !== 0) throw new Error(`collectives-bench ${op} (${mode}, ${np} ranks) failed:\n${res.stderr}`);
  const report = JSON.parse(fs.readFileSync(json, 'utf8'));
  fs.rmSync(path.dirname(json), { recursive: true, force: true });
  return report;
}

function main() {
  const o = new Command('bench:modes')
    .option('--np <list>', 'world sizes', '2,4')
    .option('--ops <list>', 'operations', 'all_reduce,reduce_scatter,all_gather,alltoall,broadcast')
    .option('-b, --minbytes <size>', 'smallest size', '8')
    .option('-e, --maxbytes <size>', 'largest size', '16M')
    .option('-f, --factor <f>', 'size factor', '8')
    .option('-n, --iters <n>', 'timed calls per cell', '50')
    .parse()
    .opts();
  let printedHeader = false;
  for (const np of o.np.split(',').map(Number)) {
    for (const op of o.ops.split(',')) {
      const async = bench(op, np, 'async', o);
      const auto = bench(op, np, 'auto', o);
      if (!printedHeader) {
        const h = auto.header;
        console.log(`# ${h.host}, ${h.cpus} CPUs (${h.cpuModel}), Node ${h.node}, Gloo ${h.gloo}; loopback; float32; ` +
          `out-of-place; -n ${o.iters} calls issued then awaited; time averaged over ranks`);
        console.log(`# busy polling ${h.tuning.busyPoll ? 'on' : 'off'} in auto mode`);
        console.log('#  np  op                  bytes   async(us)  async busbw    auto(us)   auto busbw  time ratio  busbw ratio  auto algorithm');
        printedHeader = true;
      }
      for (let i = 0; i < auto.rows.length; i++) {
        const a = async.rows[i].outOfPlace ?? async.rows[i].inPlace;
        const b = auto.rows[i].outOfPlace ?? auto.rows[i].inPlace;
        console.log(
          `${String(np).padStart(5)}  ${op.padEnd(15)}${String(auto.rows[i].bytes).padStart(10)}` +
            `${a.timeUs.toFixed(1).padStart(12)}${a.busbw.toFixed(3).padStart(13)}` +
            `${b.timeUs.toFixed(1).padStart(12)}${b.busbw.toFixed(3).padStart(13)}` +
            `${(b.timeUs / a.timeUs).toFixed(2).padStart(12)}${(b.busbw / a.busbw).toFixed(2).padStart(13)}  ${auto.rows[i].algo}`,
        );
      }
    }
  }
}

main();
