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
  const quote = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
  const script = [
    `ip link set lo up mtu ${mtu}`,
    `tc qdisc add dev lo root tbf rate ${rate} burst ${burst} latency 50ms`,
    `exec ${argv.map(quote).join(' ')}`,
  ].join(' && ');
  return spawnSync('unshare', ['-n', 'sh', '-c', script], { stdio: 'inherit', env }).status ?? 1;
}

module.exports = { cannotShape, runShaped };
