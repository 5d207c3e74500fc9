// Runs a command line inside a fresh network namespace whose loopback is shaped by a tbf
// qdisc: every address stays on loopback and all ranks share the one slow link. The MTU is
// set to 1500 first: with lo's 64 KiB MTU a small tbf burst stalls TCP. Needs root, `unshare`
// (util-linux) and `ip` / `tc` (iproute2), and says so when it cannot.
'use strict';

const { spawnSync } = require('node:child_process');

/** Why the link cannot be shaped here, or null. */
function cannotShape() {
  const why = [];
  if (process.getuid && process.getuid() !== 0) why.push('it must run as root (it creates a network namespace and a qdisc)');
  for (const tool of ['unshare', 'ip', 'tc']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) why.push(`\`${tool}\` is missing${tool === 'unshare' ? ' (util-linux)' : ' (apt-get install -y iproute2)'}`);
  }
  return why.length > 0 ? why.join('; ') : null;
}

/**
 * Runs argv[0] with argv[1..] on a loopback shaped to `rate` (tc's syntax: '1gbit', '100mbit');
 * returns its exit status. `mtu` defaults to 1500.
 */
function runShaped(argv, { rate, burst = '256kb', mtu = 1500, env = process.env } = {}) {
  mtu = mtu ?? 1500;
  const quote = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
  const script = [
    `ip link set lo up mtu ${mtu}`,
    `tc qdisc add dev lo root tbf rate ${rate} burst ${burst} latency 50ms`,
    `exec ${argv.map(quote).join(' ')}`,
  ].join(' && ');
  return spawnSync('unshare', ['-n', 'sh', '-c', script], { stdio: 'inherit', env }).status ?? 1;
}

/**
 * Starts `script` on `nproc` ranks through collectives-run with `argv`, on plain loopback or,
 * when `rate` is given, on a loopback shaped to it; returns the exit status. The ranks see
 * COLLECTIVES_BENCH_RANK=1 (and RANK), which is how a script knows it is one of them.
 */
function launchBench(script, nproc, argv, { rate, mtu } = {}) {
  const cli = require('node:path').join(__dirname, '..', 'dist', 'launch', 'cli.js');
  const launcher = [process.execPath, cli, '--nproc-per-node', String(nproc), '--master-port', '0', '--no-prefix', script, ...argv];
  const env = { ...process.env, COLLECTIVES_BENCH_RANK: '1' };
  if (rate === undefined) return spawnSync(launcher[0], launcher.slice(1), { stdio: 'inherit', env }).status ?? 1;
  const why = cannotShape();
  if (why !== null) {
    console.error(`${require('node:path').relative(process.cwd(), script)}: cannot shape the link: ${why}.`);
    return 2;
  }
  return runShaped(launcher, { rate, mtu, env });
}

/** Whether this process is one of the ranks launchBench started. */
const isBenchRank = () => process.env.COLLECTIVES_BENCH_RANK === '1' && process.env.RANK !== undefined;

/**
 * A benchmark script's entry: as one of the ranks, runs `rankMain()`; otherwise starts `nproc`
 * ranks of `script` (with `shape`: { rate, mtu } for a shaped loopback) and exits with their status.
 */
function benchMain(script, rankMain, nproc, argv, shape = {}) {
  if (isBenchRank()) {
    rankMain().catch((err) => {
      console.error(err);
      process.exit(1);
    });
  } else {
    process.exitCode = launchBench(script, nproc, argv, shape);
  }
}

module.exports = { cannotShape, runShaped, launchBench, isBenchRank, benchMain };
