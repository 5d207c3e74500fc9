'use strict';
// collectives-run end to end: real launcher processes starting real rank processes.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CLI = path.join(__dirname, '..', 'dist', 'launch', 'cli.js');
const FIXTURES = path.join(__dirname, 'fixtures', 'launcher');

function launch(args, { env = {}, onSpawn } = {}) {
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
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

// Orphans are reaped by pid 1, which in some containers never happens: a zombie is dead.
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return process.platform === 'linux' ? false : true;
  }
}

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

describe('05 launcher (collectives-run)', function () {
  this.timeout(20000);
  let pidDir;
  const started = [];

  before(function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build it with npx tsc -p .`);
  });

  beforeEach(function () {
    pidDir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-launcher-'));
  });

  afterEach(function () {
    // A failing test must not leave sleepers behind for the next one.
    for (const { pid } of recordedPids(pidDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    for (const child of started.splice(0)) child.kill('SIGKILL');
    fs.rmSync(pidDir, { recursive: true, force: true });
  });

  describe('environment and output', function () {
    it('gives every rank its torchrun variables, one store and one token, and prefixes every line', async function () {
      const res = await launch(['--nproc-per-node', '3', '--master-port', '0', path.join(FIXTURES, 'print-env.js'), '--flag', 'x'], {
        env: { COLLECTIVES_TOKEN: undefined },
      });
      assert.equal(res.code, 0, res.stderr);

      const reports = new Map();
      for (const line of lines(res.stdout)) {
        const m = /^\[rank(\d+)\]: (.*)$/.exec(line);
        assert.ok(m, `unprefixed line: ${JSON.stringify(line)}`);
        if (m[2].startsWith('{')) reports.set(Number(m[1]), JSON.parse(m[2]));
        else assert.equal(m[2], `tail of rank ${m[1]}`);
      }
      assert.deepEqual([...reports.keys()].sort(), [0, 1, 2]);
      assert.equal(lines(res.stdout).length, 6);

      const ports = new Set();
      const tokens = new Set();
      const runIds = new Set();
      for (const [rank, { env, args, storeReachable }] of reports) {
        assert.equal(env.RANK, String(rank));
        assert.equal(env.LOCAL_RANK, String(rank));
        assert.equal(env.WORLD_SIZE, '3');
        assert.equal(env.LOCAL_WORLD_SIZE, '3');
        assert.equal(env.GROUP_RANK, '0');
        assert.equal(env.MASTER_ADDR, '127.0.0.1');
        assert.equal(env.COLLECTIVES_STORE_HOSTED, '1');
        assert.equal(env.COLLECTIVES_RESTART_COUNT, '0');
        assert.match(env.MASTER_PORT, /^[1-9][0-9]*$/);
        assert.match(env.COLLECTIVES_TOKEN, /^[0-9a-f]{64}$/);
        assert.deepEqual(args, ['--flag', 'x']);
        assert.equal(storeReachable, true, `rank ${rank} could not reach the store at port ${env.MASTER_PORT}`);
        ports.add(env.MASTER_PORT);
        tokens.add(env.COLLECTIVES_TOKEN);
        runIds.add(env.COLLECTIVES_RUN_ID);
      }
      assert.equal(ports.size, 1);
      assert.equal(tokens.size, 1);
      assert.equal(runIds.size, 1);

      assert.deepEqual(lines(res.stderr).sort(), [0, 1, 2].map((r) => `[rank${r}]: stderr of rank ${r}`));
    });

    it('uses COLLECTIVES_TOKEN from the environment, and --no-prefix copies output as is', async function () {
      const token = 'a-token-every-node-shares';
      const res = await launch(['--no-prefix', '--master-port', '0', '--', path.join(FIXTURES, 'print-env.js')], {
        env: { COLLECTIVES_TOKEN: token },
      });
      assert.equal(res.code, 0, res.stderr);
      const [json, tail] = lines(res.stdout);
      assert.equal(JSON.parse(json).env.COLLECTIVES_TOKEN, token);
      assert.equal(tail, 'tail of rank 0');
      assert.equal(res.stderr, 'stderr of rank 0\n');
    });
  });

  describe('failures and signals', function () {
    const sleeper = path.join(FIXTURES, 'sleeper.js');

    it('stops every rank and its children when one rank fails, and exits with its code', async function () {
      const res = await launch(['--nproc-per-node', '3', '--master-port', '0', '--grace-ms', '300', sleeper], {
        env: { PID_DIR: pidDir, FAIL_RANK: '1', FAIL_CODE: '3' },
      });
      assert.equal(res.code, 3, res.stderr);
      assert.match(res.stderr, /rank 1 \(pid \d+\) exited with code 3/);
      const pids = recordedPids(pidDir);
      assert.deepEqual(pids.map((p) => p.name).sort(), ['grandchild', 'rank0', 'rank1', 'rank2']);
      assert.deepEqual(pids.filter((p) => isAlive(p.pid)), []);
    });

    it('reports a rank killed by a signal as 128 + the signal number', async function () {
      const script = path.join(pidDir, 'killed.js');
      fs.writeFileSync(script, "if (process.env.RANK === '0') process.kill(process.pid, 'SIGKILL'); else setInterval(() => {}, 1000);\n");
      const res = await launch(['--nproc-per-node', '2', '--master-port', '0', '--grace-ms', '300', script]);
      assert.equal(res.code, 128 + os.constants.signals.SIGKILL, res.stderr);
      assert.match(res.stderr, /rank 0 \(pid \d+\) was killed by SIGKILL/);
    });

    it('on SIGINT stops every rank and its children and exits with 130', async function () {
      let launcher;
      const done = launch(['--nproc-per-node', '3', '--master-port', '0', '--grace-ms', '300', sleeper], {
        env: { PID_DIR: pidDir },
        onSpawn: (child) => started.push((launcher = child)),
      });
      await waitFor(() => recordedPids(pidDir).length === 4, 5000);
      launcher.kill('SIGINT');
      const res = await done;
      assert.equal(res.code, 130, res.stderr);
      const pids = recordedPids(pidDir);
      assert.deepEqual(pids.filter((p) => isAlive(p.pid)), []);
    });

    it('on SIGTERM exits with 143', async function () {
      let launcher;
      const done = launch(['--nproc-per-node', '2', '--master-port', '0', '--grace-ms', '300', sleeper], {
        env: { PID_DIR: pidDir },
        onSpawn: (child) => started.push((launcher = child)),
      });
      await waitFor(() => recordedPids(pidDir).length === 3, 5000);
      launcher.kill('SIGTERM');
      const res = await done;
      assert.equal(res.code, 143, res.stderr);
      assert.deepEqual(recordedPids(pidDir).filter((p) => isAlive(p.pid)), []);
    });
  });

  describe('restarts', function () {
    const flaky = path.join(FIXTURES, 'flaky.js');

    function attempts(stdout) {
      return lines(stdout).map((l) => JSON.parse(l.replace(/^\[rank\d+\]: /, '')));
    }

    it('restarts the whole group under a fresh run id and succeeds', async function () {
      const res = await launch(['--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '1', flaky]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /rank 1 \(pid \d+\) exited with code 4; .*restart 1 of 1/);
      const seen = attempts(res.stdout);
      const second = seen.filter((a) => a.attempt === '1');
      assert.equal(second.length, 2);
      const firstIds = new Set(seen.filter((a) => a.attempt === '0').map((a) => a.runId));
      const secondIds = new Set(second.map((a) => a.runId));
      assert.equal(firstIds.size, 1);
      assert.equal(secondIds.size, 1);
      assert.notEqual([...firstIds][0], [...secondIds][0]);
    });

    it('gives up with the failing code once the restarts are spent', async function () {
      const res = await launch(['--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '1', flaky], {
        env: { ALWAYS_FAIL: '1' },
      });
      assert.equal(res.code, 4, res.stderr);
      assert.equal((res.stderr.match(/exited with code 4/g) || []).length, 2);
      assert.deepEqual([...new Set(attempts(res.stdout).map((a) => a.attempt))].sort(), ['0', '1']);
    });
  });

  describe('usage errors exit 2 and name the option', function () {
    const script = path.join(FIXTURES, 'flaky.js');
    const cases = [
      [['--nproc-per-node', 'abc'], /--nproc-per-node: expected a positive integer, got "abc"/],
      [['--nproc-per-node', '0'], /--nproc-per-node: expected a positive integer, got "0"/],
      [['--nnodes', '1.5'], /--nnodes: expected a positive integer, got "1.5"/],
      [['--node-rank', '1'], /--node-rank: expected 0 .*got "1"/],
      [['--master-port', '65536'], /--master-port: expected a port number from 0 to 65535, got "65536"/],
      [['--master-addr', ''], /--master-addr: expected a host name or IP address, got ""/],
      [['--max-restarts', '-1'], /--max-restarts: expected a non-negative integer, got "-1"/],
      [['--grace-ms', 'soon'], /--grace-ms: expected an integer .*got "soon"/],
      [['--nnodes', '2', '--node-rank', '2'], /--node-rank: expected an integer from 0 to 1 .*got "2"/],
      [['--unknown'], /unknown option '--unknown'/],
    ];
    for (const [args, message] of cases) {
      it(args.join(' '), async function () {
        const res = await launch([...args, script], { env: { COLLECTIVES_TOKEN: 't' } });
        assert.equal(res.code, 2);
        assert.match(res.stderr, message);
        assert.equal(res.stdout, '');
      });
    }

    it('--master-port 0 with --nnodes 2', async function () {
      const res = await launch(['--nnodes', '2', '--master-port', '0', script], { env: { COLLECTIVES_TOKEN: 't' } });
      assert.equal(res.code, 2);
      assert.match(res.stderr, /--master-port: 0 .*only with --nnodes 1/);
    });

    it('--nnodes 2 without COLLECTIVES_TOKEN', async function () {
      const res = await launch(['--nnodes', '2', script], { env: { COLLECTIVES_TOKEN: undefined } });
      assert.equal(res.code, 2);
      assert.match(res.stderr, /--nnodes 2: every node needs the same COLLECTIVES_TOKEN/);
    });

    it('no script', async function () {
      const res = await launch(['--nproc-per-node', '2']);
      assert.equal(res.code, 2);
      assert.match(res.stderr, /missing required argument 'script'/);
    });
  });
});
