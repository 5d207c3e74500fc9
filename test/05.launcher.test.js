'use strict';
// collectives-run end to end: real launcher processes starting real rank processes.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { CLI, launch, lines, isAlive, recordedPids, waitFor } = require('./helpers/processes');
const FIXTURES = path.join(__dirname, 'fixtures', 'launcher');

/** print-env.js's JSON reports by rank, from prefixed lines. */
function reports(stdout) {
  const out = new Map();
  for (const line of lines(stdout)) {
    const m = /^\[rank(\d+)\]: (\{.*)$/.exec(line);
    if (m) out.set(Number(m[1]), JSON.parse(m[2]));
  }
  return out;
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

  describe('torchrun compatibility', function () {
    const printEnv = path.join(FIXTURES, 'print-env.js');

    it("sets torchrun's elastic variables: GROUP_WORLD_SIZE, ROLE_RANK, ROLE_WORLD_SIZE, TORCHELASTIC_RESTART_COUNT", async function () {
      const res = await launch(['--nproc-per-node', '2', '--master-port', '0', printEnv]);
      assert.equal(res.code, 0, res.stderr);
      const seen = reports(res.stdout);
      assert.deepEqual([...seen.keys()].sort(), [0, 1]);
      for (const [rank, { env }] of seen) {
        assert.equal(env.GROUP_WORLD_SIZE, '1');
        assert.equal(env.ROLE_RANK, String(rank));
        assert.equal(env.ROLE_WORLD_SIZE, '2');
        assert.equal(env.TORCHELASTIC_RESTART_COUNT, '0');
      }
    });

    it('--standalone with underscore spellings (--nproc_per_node=2, --max_restarts) hosts the store on a free local port', async function () {
      const res = await launch(['--standalone', '--nproc_per_node=2', '--max_restarts', '0', printEnv, '--keep_me']);
      assert.equal(res.code, 0, res.stderr);
      const seen = reports(res.stdout);
      assert.deepEqual([...seen.keys()].sort(), [0, 1]);
      for (const { env, args, storeReachable } of seen.values()) {
        assert.equal(env.MASTER_ADDR, '127.0.0.1');
        assert.notEqual(env.MASTER_PORT, '29500');
        assert.equal(storeReachable, true);
        // Options after the script are the script's, underscores and all.
        assert.deepEqual(args, ['--keep_me']);
      }
    });

    it('--nproc-per-node auto starts one rank per GPU, or per CPU without one', async function () {
      const { backends } = require('../dist');
      let gpus = 0;
      try {
        const cuda = backends().cuda;
        gpus = cuda.available ? cuda.devices : 0;
      } catch {}
      const expected = gpus > 0 ? gpus : os.availableParallelism();
      if (expected > 16) this.skip();
      const res = await launch(['--nproc-per-node', 'auto', '--master-port', '0', printEnv]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(reports(res.stdout).size, expected);
    });

    it('a missing script is reported once, before any rank starts', async function () {
      const res = await launch(['--nproc-per-node', '3', '--master-port', '0', 'no-such-train.js']);
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stdout, '');
      assert.doesNotMatch(res.stderr, /\[rank|MODULE_NOT_FOUND/);
      assert.equal((res.stderr.match(/no-such-train\.js/g) || []).length, 1, res.stderr);
      assert.match(res.stderr, /<script>: expected a file, got "no-such-train\.js", which does not exist/);
    });

    it('a missing program (not a .js file) is reported once too', async function () {
      const res = await launch(['--nproc-per-node', '2', '--master-port', '0', 'no-such-program-xyz']);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, /"no-such-program-xyz", which is neither a file in .* nor a command on PATH/);
    });

    it('a .ts script runs through type stripping, or says which Node version it needs', async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-ts-'));
      try {
        fs.writeFileSync(path.join(dir, 'train.ts'), 'const rank: string = process.env.RANK ?? "?";\nconsole.log(`ts rank ${rank}`);\n');
        const res = await launch(['--nproc-per-node', '2', '--master-port', '0', 'train.ts'], { cwd: dir });
        const [major, minor] = process.versions.node.split('.').map(Number);
        if (major > 22 || (major === 22 && minor >= 6)) {
          assert.equal(res.code, 0, res.stderr);
          assert.deepEqual(lines(res.stdout).sort(), ['[rank0]: ts rank 0', '[rank1]: ts rank 1']);
        } else {
          assert.equal(res.code, 2);
          assert.equal(res.stdout, '');
          assert.match(res.stderr, new RegExp(`"train\\.ts" is TypeScript, .* from version 22\\.6 on; this is Node\\.js ${process.versions.node.replace(/\./g, '\\.')}`));
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("-m runs an installed package's bin", async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-m-'));
      try {
        const pkg = path.join(dir, 'node_modules', 'fake-trainer');
        fs.mkdirSync(path.join(pkg, 'bin'), { recursive: true });
        fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'fake-trainer', bin: { 'fake-trainer': 'bin/train' } }));
        fs.writeFileSync(path.join(pkg, 'bin', 'train'), '#!/usr/bin/env node\nconsole.log(`bin rank ${process.env.RANK} ${process.argv.slice(2).join(" ")}`);\n');
        const res = await launch(['--nproc-per-node', '2', '--master-port', '0', '-m', 'fake-trainer', '--epochs', '3'], { cwd: dir });
        assert.equal(res.code, 0, res.stderr);
        assert.deepEqual(lines(res.stdout).sort(), ['[rank0]: bin rank 0 --epochs 3', '[rank1]: bin rank 1 --epochs 3']);

        const missing = await launch(['-m', 'not-installed-pkg'], { cwd: dir });
        assert.equal(missing.code, 2);
        assert.match(missing.stderr, /-m not-installed-pkg: expected a package installed in node_modules/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('log files: --log-dir, --redirects, --tee, --local-ranks-filter', function () {
    const printEnv = path.join(FIXTURES, 'print-env.js');
    let logDir;
    beforeEach(function () {
      logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-logs-'));
    });
    afterEach(function () {
      fs.rmSync(logDir, { recursive: true, force: true });
    });

    /** { rank: { stdout, stderr } } of the one run under logDir, attempt 0. */
    function files() {
      const [run] = fs.readdirSync(logDir);
      const attempt = path.join(logDir, run, 'attempt_0');
      const out = {};
      for (const rank of fs.readdirSync(attempt)) {
        out[rank] = {};
        for (const f of fs.readdirSync(path.join(attempt, rank))) out[rank][f] = fs.readFileSync(path.join(attempt, rank, f), 'utf8');
      }
      return out;
    }

    it('--log-dir alone writes each rank\'s stdout and stderr to files and still shows them', async function () {
      const res = await launch(['--nproc-per-node', '2', '--master-port', '0', '--log-dir', logDir, printEnv]);
      assert.equal(res.code, 0, res.stderr);
      const got = files();
      assert.deepEqual(Object.keys(got).sort(), ['0', '1']);
      for (const r of ['0', '1']) {
        assert.deepEqual(Object.keys(got[r]).sort(), ['stderr.log', 'stdout.log']);
        assert.equal(got[r]['stderr.log'], `stderr of rank ${r}\n`);
        // Files are per rank, so unprefixed; a last line without a newline is kept as it is.
        assert.ok(got[r]['stdout.log'].endsWith(`\ntail of rank ${r}`), got[r]['stdout.log']);
        assert.equal(JSON.parse(got[r]['stdout.log'].split('\n')[0]).env.RANK, r);
      }
      assert.equal(reports(res.stdout).size, 2);
      assert.match(res.stderr, new RegExp(`rank output files in ${logDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.match(res.stderr, /\[rank1\]: stderr of rank 1/);
    });

    it('--redirects 3 sends both streams only to the files; --tee 2 shows stderr as well', async function () {
      let res = await launch(['--nproc-per-node', '2', '--master-port', '0', '--log-dir', logDir, '--redirects', '3', printEnv]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, '');
      assert.doesNotMatch(res.stderr, /\[rank/);
      assert.equal(files()['1']['stderr.log'], 'stderr of rank 1\n');

      fs.rmSync(logDir, { recursive: true, force: true });
      res = await launch(['--nproc_per_node', '2', '--master_port', '0', '--log_dir', logDir, '-r', '3', '-t', '2', printEnv]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, '');
      assert.deepEqual(lines(res.stderr).filter((l) => l.startsWith('[rank')).sort(), ['[rank0]: stderr of rank 0', '[rank1]: stderr of rank 1']);
      assert.deepEqual(Object.keys(files()['0']).sort(), ['stderr.log', 'stdout.log']);
    });

    it('per local rank: --redirects 0:1 writes only local rank 0\'s stdout; without --log-dir a temporary folder is used', async function () {
      const res = await launch(['--nproc-per-node', '2', '--master-port', '0', '--redirects', '0:1', printEnv]);
      assert.equal(res.code, 0, res.stderr);
      const m = /rank output files in (\S+)/.exec(res.stderr);
      assert.ok(m, res.stderr);
      try {
        const dir = path.join(m[1], 'attempt_0');
        assert.deepEqual(fs.readdirSync(dir), ['0']);
        assert.deepEqual(fs.readdirSync(path.join(dir, '0')), ['stdout.log']);
        assert.deepEqual([...reports(res.stdout).keys()], [1]);
      } finally {
        fs.rmSync(path.dirname(m[1]), { recursive: true, force: true });
      }
    });

    it('--local-ranks-filter 1 shows only local rank 1 on the console, while the files have every rank', async function () {
      const res = await launch(['--nproc-per-node', '3', '--master-port', '0', '--log-dir', logDir, '--local-ranks-filter', '1', printEnv]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual([...reports(res.stdout).keys()], [1]);
      assert.deepEqual(lines(res.stderr).filter((l) => l.startsWith('[rank')), ['[rank1]: stderr of rank 1']);
      assert.deepEqual(Object.keys(files()).sort(), ['0', '1', '2']);

      const plain = await launch(['--nproc-per-node', '2', '--master-port', '0', '--local_ranks_filter=0', printEnv]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.deepEqual([...reports(plain.stdout).keys()], [0]);
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
      // torchrun's name for the attempt counts the same way.
      for (const a of seen) assert.equal(a.torchAttempt, a.attempt);
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
      [['--nproc-per-node', 'abc'], /--nproc-per-node: expected a positive integer, auto, cpu or gpu, got "abc"/],
      [['--nproc-per-node', '0'], /--nproc-per-node: expected a positive integer, auto, cpu or gpu, got "0"/],
      [['--nproc_per_node', '0'], /--nproc-per-node: expected a positive integer, auto, cpu or gpu, got "0"/],
      [['--tee', '4'], /--tee: expected 0 \(none\), 1 \(stdout\), 2 \(stderr\), 3 \(both\).*got "4"/],
      [['--redirects', '0:x'], /--redirects: expected 0 \(none\).*got "0:x"/],
      [['--nproc-per-node', '2', '--local-ranks-filter', '2'], /--local-ranks-filter: expected local ranks from 0 to 1.*got "2"/],
      [['--standalone', '--nnodes', '2'], /--standalone: expected a single node, got --nnodes 2/],
      [['--standalone', '--master_port', '29400'], /--standalone: expected no --master-port .*got --master-port 29400/],
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
