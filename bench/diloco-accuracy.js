// Accuracy, sync rounds and bytes of the Fashion-MNIST example under DDP and DiLoCo's
// variants: 4 ranks, batch 32 per rank, --steps inner steps (1500), AdamW lr 1e-3 weight decay
// 0.01, outer Nesterov 0.7 / 0.9. Each run is examples/train-fashion-mnist.js through
// collectives-run on plain loopback, in turn; the table is printed at the end (Markdown).
//
//   node bench/diloco-accuracy.js [--steps 1500] [--runs ddp,h10,h50,h250,int8,int4,streaming,eager,delayed] [--json FILE]
//
// Time is not the point here (bench/diloco-race.js races them on a slow link): the wall
// seconds each run prints are the loaded machine's.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');

const RUNS = {
  ddp: { label: 'DDP', args: ['--strategy', 'ddp'] },
  h10: { label: 'DiLoCo H = 10', args: ['--strategy', 'diloco', '--sync-every', '10'] },
  h50: { label: 'DiLoCo H = 50', args: ['--strategy', 'diloco', '--sync-every', '50'] },
  h250: { label: 'DiLoCo H = 250', args: ['--strategy', 'diloco', '--sync-every', '250'] },
  int8: { label: 'DiLoCo H = 50, int8 (error feedback)', args: ['--strategy', 'diloco', '--sync-every', '50', '--quantize', 'int8'] },
  int4: { label: 'DiLoCo H = 50, int4 (error feedback)', args: ['--strategy', 'diloco', '--sync-every', '50', '--quantize', 'int4'] },
  streaming: { label: 'Streaming DiLoCo H = 50, P = 4, τ = 5', args: ['--strategy', 'diloco', '--sync-every', '50', '--fragments', '4', '--fragment-sync-delay', '5'] },
  eager: { label: 'DiLoCo H = 50, eager (τ = 5)', args: ['--strategy', 'diloco', '--sync-every', '50', '--mode', 'eager', '--fragment-sync-delay', '5'] },
  delayed: { label: 'DiLoCo H = 50, one-step delayed', args: ['--strategy', 'diloco', '--sync-every', '50', '--mode', 'delayed'] },
};

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '1500' },
    runs: { type: 'string', default: Object.keys(RUNS).join(',') },
    json: { type: 'string' },
  },
});
const root = path.join(__dirname, '..');
const results = [];
for (const name of values.runs.split(',')) {
  const run = RUNS[name];
  if (run === undefined) throw new Error(`--runs: ${JSON.stringify(name)} is not one of ${Object.keys(RUNS).join(', ')}`);
  const out = path.join(os.tmpdir(), `diloco-accuracy-${process.pid}-${name}.json`);
  const argv = [path.join(root, 'dist', 'launch', 'cli.js'), '--nproc-per-node', '4', '--master-port', '0', path.join(root, 'examples', 'train-fashion-mnist.js'), '--steps', values.steps, '--log-every', '500', '--json', out, ...run.args];
  console.log(`# ${run.label}: node ${argv.map((a) => path.relative(root, a) || a).join(' ')}`);
  const r = spawnSync(process.execPath, argv, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) throw new Error(`${name}: exited with ${r.status}`);
  results.push({ name, label: run.label, ...JSON.parse(fs.readFileSync(out, 'utf8')) });
  fs.rmSync(out, { force: true });
}
const ddp = results.find((r) => r.name === 'ddp');
console.log('\n| run | test accuracy | vs DDP | train loss (last 500) | sync rounds | outer steps | MB sent by rank 0 | bytes vs DDP |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results) {
  const vs = ddp && r !== ddp ? `${((r.testAccuracy - ddp.testAccuracy) * 100 >= 0 ? '+' : '')}${((r.testAccuracy - ddp.testAccuracy) * 100).toFixed(2)}` : '—';
  const bytes = ddp && r !== ddp ? `${(ddp.bytesSent / r.bytesSent).toFixed(0)}× less` : '—';
  console.log(`| ${r.label} | ${(r.testAccuracy * 100).toFixed(2)}% | ${vs} | ${r.trainLoss.toFixed(3)} | ${r.syncRounds} | ${r.outerSteps ?? r.syncRounds} | ${(r.bytesSent / 1e6).toFixed(1)} | ${bytes} |`);
}
if (values.json) fs.writeFileSync(values.json, JSON.stringify(results, null, 2) + '\n');
