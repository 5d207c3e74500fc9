'use strict';
// Runs a worker script under the real launcher (collectives-run) and collects its output.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
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
  'COLLECTIVES_TIMEOUT_MS', 'COLLECTIVES_SOCKET_IFNAME', 'COLLECTIVES_ELASTIC', 'COLLECTIVES_ELASTIC_ID',
  'COLLECTIVES_ELASTIC_MIN_WORKERS',
];

/**
 * Starts `worker` (a file in test/workers) on `nproc` ranks. Resolves with
 * { code, signal, stdout, stderr, ms }. After `killAfterMs` the launcher gets
 * SIGTERM, which stops every rank, so a hang shows up as exit code 143 with
 * the ranks' output so far instead of a silent mocha timeout.
 */
function launchWorker(worker, { nproc, args = [], env = {}, killAfterMs = 60000, launcherArgs = [] } = {}) {
  const childEnv = { ...process.env };
  for (const k of FOREIGN) delete childEnv[k];
  // A collective that never completes fails well before the launcher is killed.
  childEnv.COLLECTIVES_TIMEOUT_MS = String(Math.max(1000, Math.floor(killAfterMs / 2)));
  Object.assign(childEnv, env);
  const script = path.join(WORKERS, worker);
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [CLI, '--nproc-per-node', String(nproc), '--master-port', '0', '--grace-ms', '1000', ...launcherArgs, script, ...args],
    { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return collect(child, started, killAfterMs);
}

/**
 * Collects a launcher's output; after `killAfterMs` it gets SIGTERM, which stops its ranks, so a
 * hang shows up as `killed` with the output so far. Resolves with { code, signal, stdout,
 * stderr, ms, killed }.
 */
function collect(child, started, killAfterMs) {
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

/**
 * Starts `worker` on `nproc` ranks without the launcher, which would stop
 * every rank as soon as one dies: for tests that kill a rank on purpose. The
 * store is hosted here, as collectives-run would host it. Resolves with one
 * { rank, code, signal, stdout, stderr } per rank; ranks still running after
 * `killAfterMs` are killed (and marked `killed`). `store` ({ server, token })
 * lends a store the caller hosts (and closes) instead.
 */
async function spawnRanks(worker, { nproc, args = [], env = {}, killAfterMs = 30000, store } = {}) {
  const { StoreServer } = require('../../dist/store/server.js');
  const token = store ? store.token : randomBytes(16).toString('hex');
  const server = store ? store.server : await StoreServer.start({ host: '127.0.0.1', port: 0, token });
  const base = { ...process.env };
  for (const k of FOREIGN) delete base[k];
  Object.assign(base, {
    WORLD_SIZE: String(nproc),
    LOCAL_WORLD_SIZE: String(nproc),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(server.port),
    COLLECTIVES_TOKEN: token,
    COLLECTIVES_STORE_HOSTED: '1',
    COLLECTIVES_RUN_ID: `test-${token.slice(0, 8)}`,
    COLLECTIVES_TIMEOUT_MS: String(Math.max(1000, Math.floor(killAfterMs / 2))),
    ...env,
  });
  const ranks = [];
  for (let rank = 0; rank < nproc; rank++) {
    const child = spawn(process.execPath, [path.join(WORKERS, worker), ...args], {
      env: { ...base, RANK: String(rank), LOCAL_RANK: String(rank) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = { rank, code: null, signal: null, stdout: '', stderr: '', killed: false };
    child.stdout.setEncoding('utf8').on('data', (s) => (out.stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (out.stderr += s));
    const timer = setTimeout(() => {
      out.killed = true;
      child.kill('SIGKILL');
    }, killAfterMs);
    ranks.push(
      new Promise((resolve) => {
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          Object.assign(out, { code, signal });
          resolve(out);
        });
      }),
    );
  }
  try {
    return await Promise.all(ranks);
  } finally {
    if (!store) await server.close();
  }
}

/** Everything the ranks of spawnRanks printed, for failure messages. */
function describeRanks(results) {
  return results
    .map((r) => `--- rank ${r.rank}: code ${r.code}, signal ${r.signal}${r.killed ? ' (killed: hung)' : ''}\n${r.stderr}${r.stdout}`)
    .join('\n');
}

module.exports = { launchWorker, assertSucceeded, spawnRanks, describeRanks, collect, CLI, FOREIGN };
