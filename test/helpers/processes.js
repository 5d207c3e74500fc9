'use strict';
// Processes the launcher tests start and watch: the launcher run with its output collected,
// whether a pid still runs, the pids ranks recorded, a process's children, a polled condition.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

const CLI = path.join(__dirname, '..', '..', 'dist', 'launch', 'cli.js');

/** Runs collectives-run with `args`; `env` values of undefined are removed. Resolves with { code, signal, stdout, stderr }. */
function launch(args, { env = {}, onSpawn, cwd } = {}) {
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
  if (onSpawn) onSpawn(child);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function lines(text) {
  return text.split('\n').filter((l) => l.length > 0);
}

/** The fields after the command in /proc/<pid>/stat: state, ppid, … (undefined when gone). */
function statFields(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) state ppid …": comm may itself hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs. Orphans are reaped by pid 1, which in some containers never happens: a zombie is dead. */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const f = statFields(pid);
  if (f === undefined) return process.platform !== 'linux';
  return f[0] !== 'Z';
}

/** The live children of `pid` (from /proc). */
function childPids(pid) {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^[0-9]+$/.test(e))
    .filter((e) => {
      const f = statFields(e);
      return f !== undefined && Number(f[1]) === pid && f[0] !== 'Z';
    })
    .map(Number);
}

/** The `<name>.pid` files the fixtures wrote into `dir`. */
function recordedPids(dir) {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => ({ name: f.slice(0, -4), pid: Number(fs.readFileSync(path.join(dir, f), 'utf8')) }));
}

async function waitFor(predicate, ms) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP port of 127.0.0.1 that nothing listens on (at the moment of asking). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

module.exports = { CLI, launch, lines, isAlive, childPids, recordedPids, waitFor, freePort };
