'use strict';
// Runs a worker script under the real launcher (collectives-run) and collects its output.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const CLI = path.join(__dirname, '..', '..', 'dist', 'launch', 'cli.js');
const WORKERS = path.join(__dirname, '..', 'workers');

// Variables of other launchers: a test run started under one of them must not
// leak its ranks into the ranks these tests start.
const FOREIGN = [
  'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'MASTER_ADDR', 'MASTER_PORT',
  'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_SIZE',
  'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_NTASKS_PER_NODE',
  'COLLECTIVES_TOKEN', 'COLLECTIVES_STORE_HOSTED', 'COLLECTIVES_RUN_ID', 'COLLECTIVES_RESTART_COUNT',
  'COLLECTIVES_TIMEOUT_MS', 'COLLECTIVES_SOCKET_IFNAME',
];

/**
 * Starts `worker` (a file in test/workers) on `nproc` ranks. Resolves with
 * { code, signal, stdout, stderr, ms }. After `killAfterMs` the launcher gets
 * SIGTERM, which stops every rank, so a hang shows up as exit code 143 with
 * the ranks' output so far instead of a silent mocha timeout.
 */
function launchWorker(worker, { nproc, args = [], env = {}, killAfterMs = 60000 } = {}) {
  const childEnv = { ...process.env };
  for (const k of FOREIGN) delete childEnv[k];
  // A collective that never completes fails well before the launcher is killed.
  childEnv.COLLECTIVES_TIMEOUT_MS = String(Math.max(1000, Math.floor(killAfterMs / 2)));
  Object.assign(childEnv, env);
  const script = path.join(WORKERS, worker);
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [CLI, '--nproc-per-node', String(nproc), '--master-port', '0', '--grace-ms', '1000', script, ...args],
    { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGTERM');
  }, killAfterMs);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, killed });
    });
  });
}

/** Fails with every line the ranks printed unless the launcher exited with 0. */
function assertSucceeded(res, what) {
  if (res.code === 0) return;
  const why = res.killed ? `was stopped after ${res.ms} ms (hung?)` : `exited with code ${res.code}${res.signal ? ` (${res.signal})` : ''}`;
  assert.fail(`${what}: the launcher ${why}\n--- stderr ---\n${res.stderr}\n--- stdout ---\n${res.stdout}`);
}

module.exports = { launchWorker, assertSucceeded, CLI, FOREIGN };
