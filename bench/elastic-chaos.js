// Chaos run of elastic DiLoCo on Fashion-MNIST: examples/train-elastic.js on 4 workers through
// `collectives-run --elastic`, once without failures and once while a killer sends SIGKILL to a
// random process among the workers (members, or restarted ones still waiting to join) at random
// moments: --kills times, a uniform 1 to 4 s apart, none in the last tenth of the run (so that
// every kill is recovered from in the run), and only once rank 0 has logged a generation of at
// least 3 of the 4 workers since the last kill (so that the killer never takes the last workers
// that hold the state, which would end the job: every worker left would stop with QUORUM_LOST). Prints the accuracy of
// both, the number of generations, and the recovery times the workers measured (from the failed
// call to the next successful collective): median and max. Fails unless the 4 workers that
// finish hold the same θ_global, bit for bit.
//
//   node bench/elastic-chaos.js [--steps 3000] [--kills 20] [--seed 1] [--json FILE]
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
// The tests' seeded generator and process helpers, so a run's kill schedule can be replayed.
const { rng } = require('../test/helpers/rng');
const { childPids } = require('../test/helpers/processes');

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '3000' },
    kills: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    json: { type: 'string' },
  },
});
const STEPS = Number(values.steps);
const KILLS = Number(values.kills);
const root = path.join(__dirname, '..');
const WORKERS = 4;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function run(label, kills) {
  const out = path.join(os.tmpdir(), `elastic-chaos-${process.pid}-${label}.json`);
  const argv = [path.join(root, 'dist', 'launch', 'cli.js'), '--elastic', '--max-restarts', String(Math.max(kills, 1) * 2), '--nproc-per-node', String(WORKERS), '--master-port', '0',
    path.join(root, 'examples', 'train-elastic.js'), '--steps', String(STEPS), '--log-every', '100', '--json', out];
  console.log(`# ${label}: node ${argv.map((a) => path.relative(root, a) || a).join(' ')}${kills ? ` (${kills} SIGKILLs)` : ''}`);
  const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const rand = rng(Number(values.seed));
  const t0 = Date.now();
  let text = '';
  let progress = 0;
  let started = false;
  let lastProgress;
  let longestGap = 0;
  // Workers in the newest generation, from rank 0's line.
  let members = 0;
  const killed = [];
  const onLine = (line) => {
    text += line + '\n';
    const m = /step ([0-9]+): loss/.exec(line);
    if (m) progress = Number(m[1]);
    if (line.includes('elastic DiLoCo on')) started = true;
    const g = /generation [0-9]+: workers ([0-9,]+)/.exec(line);
    if (g) members = g[1].split(',').length;
    const at = ((Date.now() - t0) / 1000).toFixed(1);
    if (/generation [0-9]+:|collectives-run:|test accuracy/.test(line)) console.log(`  +${at} s ${line}`);
    if (m) {
      // The longest time between two of rank 0's progress lines (every 100 steps).
      if (lastProgress !== undefined) longestGap = Math.max(longestGap, Date.now() - lastProgress);
      lastProgress = Date.now();
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream.setEncoding('utf8').on('data', (d) => {
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop();
      lines.forEach(onLine);
    });
  }
  let timer;
  const killer = () => {
    if (killed.length >= kills) return;
    timer = setTimeout(() => {
      // Never the last holders of the state: at most one worker is down when a kill comes.
      if (started && progress < 0.9 * STEPS && members >= WORKERS - 1) {
        const pids = childPids(child.pid);
        if (pids.length > 0) {
          const pid = pids[Math.floor(rand() * pids.length)];
          try {
            process.kill(pid, 'SIGKILL');
            killed.push({ pid, at: Date.now(), step: progress });
            // Unknown until rank 0 logs the next generation (a kill can also end a generation
            // that was forming, whose line then never comes).
            members = 0;
          } catch {
            // it ended meanwhile
          }
        }
      }
      if (progress < 0.9 * STEPS) killer();
    }, 1000 + rand() * 3000);
  };
  if (kills > 0) killer();
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${label}: the launcher exited with ${code}\n${text.slice(-4000)}`));
      const result = JSON.parse(fs.readFileSync(out, 'utf8'));
      fs.rmSync(out, { force: true });
      // Printed as each happens, so the recoveries of workers killed later are counted too.
      const recoveries = [...text.matchAll(/recovered: (\{.*\})/g)].map((m) => JSON.parse(m[1]).ms);
      const generations = [...text.matchAll(/generation ([0-9]+): workers/g)].length;
      const finished = [...text.matchAll(/finished: (\{.*\})/g)].map((m) => JSON.parse(m[1]));
      if (finished.length !== WORKERS || new Set(finished.map((f) => f.globalHash)).size !== 1) {
        return reject(new Error(`${label}: the workers that finished do not hold one θ_global: ${JSON.stringify(finished)}`));
      }
      resolve({ label, kills: killed.length, result, recoveries, generations, seconds: (Date.now() - t0) / 1000, longestGapMs: longestGap });
    });
    child.on('error', reject);
  });
}

(async () => {
  const clean = await run('no failures', 0);
  const chaos = await run('chaos', KILLS);
  const rec = chaos.recoveries;
  console.log('\n| run | SIGKILLs | generations | test accuracy | outer steps | wall s | longest 100 steps (s) | recovery median (ms) | recovery max (ms) | recoveries measured |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of [clean, chaos]) {
    const med = r.recoveries.length ? median(r.recoveries).toFixed(0) : '—';
    const max = r.recoveries.length ? Math.max(...r.recoveries).toFixed(0) : '—';
    console.log(`| ${r.label} | ${r.kills} | ${r.generations} | ${(r.result.testAccuracy * 100).toFixed(2)}% | ${r.result.outerSteps} | ${r.seconds.toFixed(1)} | ${(r.longestGapMs / 1000).toFixed(1)} | ${med} | ${max} | ${r.recoveries.length} |`);
  }
  const gap = (chaos.result.testAccuracy - clean.result.testAccuracy) * 100;
  console.log(`\naccuracy with failures − without: ${gap >= 0 ? '+' : ''}${gap.toFixed(2)} points; recovery median ${median(rec).toFixed(0)} ms over ${rec.length} recoveries`);
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ clean, chaos, gapPoints: gap, recoveryMedianMs: median(rec), recoveryMaxMs: Math.max(...rec) }, null, 2) + '\n');
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
