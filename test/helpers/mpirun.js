'use strict';
// Starts a worker script (a file in test/workers) on ranks that Open MPI's
// mpirun starts, as a user of the MPI engine would; and says why not when
// this machine has no mpirun or no libmpi, so that the tests that need them
// skip with the reason printed.

const { spawn, spawnSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const os = require('node:os');
const path = require('node:path');

const { FOREIGN: LAUNCHER_FOREIGN, collect } = require('./launch');
const { freePort } = require('./processes');

const WORKERS = path.join(__dirname, '..', 'workers');

// Variables of other launchers and of an outer job, which must not reach the ranks (Open MPI's
// own, OMPI_* and PMIX_*, are dropped by prefix below).
const FOREIGN = [...LAUNCHER_FOREIGN, 'COLLECTIVES_ENGINE'];

let cached;

/** null when mpirun and libmpi are both here; otherwise why the MPI tests skip. */
function mpiMissing() {
  if (cached !== undefined) return cached;
  const probe = spawnSync('mpirun', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    cached = `mpirun not found (${probe.error ? probe.error.code : `exit ${probe.status}`}): install openmpi-bin libopenmpi-dev`;
    return cached;
  }
  const { backends } = require('../../dist');
  const mpi = backends().mpi;
  cached = mpi.available ? null : `libmpi did not load: ${mpi.reason}`;
  return cached;
}

/** Skips the calling test (or hook), printing why, when MPI is missing. */
function skipWithoutMpi(ctx) {
  const why = mpiMissing();
  if (why === null) return;
  console.log(`      (skipped: ${why})`);
  ctx.skip();
}

/**
 * Runs `worker` on `np` ranks under mpirun. Resolves with { code, signal, stdout, stderr,
 * ms, killed }; after `killAfterMs` mpirun gets SIGTERM (which stops its ranks), so a hang
 * shows up as `killed` with the output so far. More ranks than cores are allowed
 * (--oversubscribe), with mpi_yield_when_idle so that waiting ranks give their core away.
 */
async function mpirunWorker(worker, { np, args = [], env = {}, mpirunArgs = [], killAfterMs = 60000 } = {}) {
  const childEnv = { ...process.env };
  for (const k of FOREIGN) delete childEnv[k];
  for (const k of Object.keys(childEnv)) if (k.startsWith('OMPI_') || k.startsWith('PMIX_')) delete childEnv[k];
  childEnv.COLLECTIVES_TIMEOUT_MS = String(Math.max(1000, Math.floor(killAfterMs / 2)));
  childEnv.MASTER_ADDR = '127.0.0.1';
  childEnv.MASTER_PORT = String(await freePort());
  childEnv.COLLECTIVES_TOKEN = randomBytes(8).toString('hex');
  Object.assign(childEnv, env);
  const launcherArgs = ['-np', String(np), '--oversubscribe', '--mca', 'mpi_yield_when_idle', '1'];
  if (typeof process.getuid === 'function' && process.getuid() === 0) launcherArgs.push('--allow-run-as-root');
  const started = Date.now();
  const child = spawn('mpirun', [...launcherArgs, ...mpirunArgs, process.execPath, path.join(WORKERS, worker), ...args], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child, started, killAfterMs);
}

module.exports = { mpiMissing, skipWithoutMpi, mpirunWorker, cpus: () => os.availableParallelism() };
