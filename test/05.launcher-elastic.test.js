'use strict';
// collectives-run --elastic end to end: a failed rank is restarted alone while the others go on,
// and its death is written to the store. Real launcher processes, plain node ranks.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { CLI, launch, lines, isAlive, recordedPids, waitFor, freePort } = require('./helpers/processes');
const FIXTURES = path.join(__dirname, 'fixtures', 'launcher');
const ELASTIC = path.join(FIXTURES, 'elastic.js');

/** elastic.js's JSON lines, in order, each with the rank of its prefix. */
function events(stdout) {
  const out = [];
  for (const line of lines(stdout)) {
    const m = /^\[rank(\d+)\]: (\{.*)$/.exec(line);
    if (m) out.push({ rank: Number(m[1]), ...JSON.parse(m[2]) });
  }
  return out;
}

describe('05 launcher --elastic (collectives-run)', function () {
  this.timeout(30000);
  let dir;
  const started = [];

  before(function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build it with npx tsc -p .`);
  });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-elastic-'));
  });

  afterEach(function () {
    // A failing test must not leave ranks behind for the next one.
    for (const { pid } of recordedPids(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    for (const child of started.splice(0)) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('a failed rank is restarted alone', function () {
    it('restarts rank 1 in its slot while rank 0 runs on, with the same run id, and exits 0', async function () {
      const logDir = path.join(dir, 'logs');
      const res = await launch(
        ['--elastic', '--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '3', '--min-workers', '2', '--log-dir', logDir, ELASTIC],
        { env: { SYNC_DIR: dir, FAIL_HOW: 'exit', FAIL_CODE: '3', WAIT_FOR: 'restart' } },
      );
      assert.equal(res.code, 0, res.stderr);
      const restartLines = lines(res.stderr).filter((l) => /^collectives-run: rank \d/.test(l));
      assert.equal(restartLines.length, 1, res.stderr);
      assert.match(restartLines[0], /^collectives-run: rank 1 \(pid \d+\) exited with code 3; restarting it \(restart 1 of 3\), the other ranks go on$/);

      const seen = events(res.stdout);
      const rank0 = seen.filter((e) => e.rank === 0);
      const rank1 = seen.filter((e) => e.rank === 1);
      // Rank 0: one process from start to end, never restarted, ending after rank 1's restart.
      assert.deepEqual(rank0.map((e) => e.event), ['start', 'end']);
      assert.equal(rank0[0].pid, rank0[1].pid);
      assert.equal(rank0[0].env.TORCHELASTIC_RESTART_COUNT, '0');
      assert.equal(rank0[0].env.COLLECTIVES_ELASTIC_ID, '0.0');
      // Rank 1: a first incarnation that failed, then a second one in the same slot.
      assert.deepEqual(rank1.map((e) => e.event), ['start', 'start', 'end']);
      const [first, second] = rank1;
      assert.notEqual(first.pid, second.pid);
      assert.equal(rank0[1].restartedPid, second.pid);
      assert.match(restartLines[0], new RegExp(`\\(pid ${first.pid}\\)`));
      assert.equal(first.env.TORCHELASTIC_RESTART_COUNT, '0');
      assert.equal(first.env.COLLECTIVES_ELASTIC_ID, '1.0');
      assert.equal(second.env.TORCHELASTIC_RESTART_COUNT, '1');
      assert.equal(second.env.COLLECTIVES_RESTART_COUNT, '1');
      assert.equal(second.env.COLLECTIVES_ELASTIC_ID, '1.1');
      for (const e of [...rank0, ...rank1]) {
        assert.equal(e.env.COLLECTIVES_ELASTIC, '1');
        assert.equal(e.env.COLLECTIVES_ELASTIC_MIN_WORKERS, '2');
        assert.equal(e.env.COLLECTIVES_STORE_HOSTED, '1');
        assert.equal(e.env.WORLD_SIZE, '2');
        assert.equal(e.env.RANK, String(e.rank));
        assert.equal(e.env.LOCAL_RANK, String(e.rank));
        assert.equal(e.env.COLLECTIVES_RUN_ID, rank0[0].env.COLLECTIVES_RUN_ID);
      }
      assert.match(rank0[0].env.COLLECTIVES_RUN_ID, /-0$/);

      // The restarted rank writes under attempt_1/, and its first output is kept.
      const [run] = fs.readdirSync(logDir);
      const attempt0 = path.join(logDir, run, 'attempt_0');
      const attempt1 = path.join(logDir, run, 'attempt_1');
      assert.deepEqual(fs.readdirSync(attempt0).sort(), ['0', '1']);
      assert.deepEqual(fs.readdirSync(attempt1), ['1']);
      assert.equal(JSON.parse(fs.readFileSync(path.join(attempt0, '1', 'stdout.log'), 'utf8').split('\n')[0]).pid, first.pid);
      assert.equal(JSON.parse(fs.readFileSync(path.join(attempt1, '1', 'stdout.log'), 'utf8').split('\n')[0]).pid, second.pid);
    });

    it('restarts a rank killed by SIGKILL, reported with exit status 137', async function () {
      const res = await launch(['--elastic', '--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '1', ELASTIC], {
        env: { SYNC_DIR: dir, FAIL_HOW: 'kill', WAIT_FOR: 'restart' },
      });
      assert.equal(res.code, 0, res.stderr);
      assert.match(
        res.stderr,
        /collectives-run: rank 1 \(pid \d+\) was killed by SIGKILL \(exit status 137\); restarting it \(restart 1 of 1\), the other ranks go on\n/,
      );
      const rank1 = events(res.stdout).filter((e) => e.rank === 1);
      assert.deepEqual(rank1.map((e) => [e.event, e.env.COLLECTIVES_ELASTIC_ID]), [['start', '1.0'], ['start', '1.1'], ['end', '1.1']]);
      assert.equal(rank1[0].env.COLLECTIVES_ELASTIC_MIN_WORKERS, '1');
    });

    it('once the restarts are spent the others still finish, and the launcher exits with the lost rank\'s code', async function () {
      const res = await launch(['--elastic', '--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '0', ELASTIC], {
        env: { SYNC_DIR: dir, FAIL_HOW: 'exit', FAIL_CODE: '3', WAIT_FOR: 'gone' },
      });
      assert.equal(res.code, 3, res.stderr);
      assert.match(
        res.stderr,
        /collectives-run: rank 1 \(pid \d+\) exited with code 3; not restarting it \(--max-restarts 0 spent\), the other ranks go on\n/,
      );
      const seen = events(res.stdout);
      assert.deepEqual(seen.filter((e) => e.rank === 1).map((e) => e.event), ['start']);
      // Rank 0's end line is printed after it saw rank 1 gone: the launcher let it finish.
      assert.deepEqual(seen.filter((e) => e.rank === 0).map((e) => e.event), ['start', 'end']);
    });
  });

  describe('the death notice', function () {
    it('is in the store under <run id>/elastic/store/dead/<rank>.<incarnation>, counted in …/deaths', async function () {
      const res = await launch(['--elastic', '--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '0', ELASTIC], {
        env: { SYNC_DIR: dir, FAIL_HOW: 'kill', WAIT_FOR: 'notice' },
      });
      assert.equal(res.code, 137, res.stderr);
      assert.doesNotMatch(res.stderr, /warning/);
      const [end] = events(res.stdout).filter((e) => e.rank === 0 && e.event === 'end');
      assert.ok(end, res.stdout + res.stderr);
      assert.deepEqual(end.notice, { rank: 1, incarnation: 0, code: null, signal: 'SIGKILL' });
    });

    it('carries the exit code of a rank that exited with failure', async function () {
      const res = await launch(['--elastic', '--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '1', ELASTIC], {
        env: { SYNC_DIR: dir, FAIL_HOW: 'exit', FAIL_CODE: '5', WAIT_FOR: 'notice' },
      });
      assert.equal(res.code, 0, res.stderr);
      const [end] = events(res.stdout).filter((e) => e.rank === 0 && e.event === 'end');
      assert.ok(end, res.stdout + res.stderr);
      assert.deepEqual(end.notice, { rank: 1, incarnation: 0, code: 5, signal: null });
    });

    it('a store that cannot be reached gets a warning, and the launcher goes on', async function () {
      // Node 1 of two: the store would be node 0's, which is not there.
      const script = path.join(dir, 'fail.js');
      fs.writeFileSync(script, 'process.exit(3);\n');
      const port = await freePort();
      const res = await launch(
        ['--elastic', '--nnodes', '2', '--node-rank', '1', '--master-port', String(port), '--max-restarts', '1', script],
        { env: { COLLECTIVES_TOKEN: 'a-shared-token' } },
      );
      assert.equal(res.code, 3, res.stderr);
      const warnings = lines(res.stderr).filter((l) => l.includes('warning'));
      assert.equal(warnings.length, 2, res.stderr);
      assert.match(warnings[0], new RegExp(`^collectives-run: warning: could not write rank 1's death notice to the store at 127\\.0\\.0\\.1:${port} \\(.+\\); going on without it$`));
      assert.match(res.stderr, /rank 1 \(pid \d+\) exited with code 3; restarting it \(restart 1 of 1\)\n/);
      assert.match(res.stderr, /rank 1 \(pid \d+\) exited with code 3; not restarting it \(--max-restarts 1 spent\)\n/);
    });
  });

  describe('signals', function () {
    it('on SIGINT stops every rank and its children and exits with 130', async function () {
      let launcher;
      const done = launch(['--elastic', '--nproc-per-node', '3', '--master-port', '0', '--max-restarts', '5', '--grace-ms', '300', path.join(FIXTURES, 'sleeper.js')], {
        env: { PID_DIR: dir },
        onSpawn: (child) => started.push((launcher = child)),
      });
      await waitFor(() => recordedPids(dir).length === 4, 5000);
      launcher.kill('SIGINT');
      const res = await done;
      assert.equal(res.code, 130, res.stderr);
      // Ranks ended by the stop are not failures to restart.
      assert.doesNotMatch(res.stderr, /restarting it/);
      assert.deepEqual(recordedPids(dir).filter((p) => isAlive(p.pid)), []);
    });

    it('on SIGTERM also stops a restarted rank, and exits with 143', async function () {
      let launcher;
      const done = launch(['--elastic', '--nproc-per-node', '2', '--master-port', '0', '--max-restarts', '1', '--grace-ms', '300', ELASTIC], {
        env: { SYNC_DIR: dir, FAIL_HOW: 'exit', WAIT_FOR: 'restart', SLEEP_AT_END: '1' },
        onSpawn: (child) => started.push((launcher = child)),
      });
      await waitFor(() => fs.existsSync(path.join(dir, 'rank1.1.pid')), 10000);
      launcher.kill('SIGTERM');
      const res = await done;
      assert.equal(res.code, 143, res.stderr);
      const pids = recordedPids(dir);
      assert.deepEqual(pids.map((p) => p.name).sort(), ['rank0', 'rank1', 'rank1.1']);
      assert.deepEqual(pids.filter((p) => isAlive(p.pid)), []);
    });
  });

  describe('usage errors exit 2 and name the option', function () {
    const cases = [
      [['--min-workers', '2'], /--min-workers: expected --elastic with it .*got --min-workers 2 alone/],
      [['--elastic', '--min-workers', '0'], /--min-workers: expected an integer from 1 to 1 .*got "0"/],
      [['--elastic', '--nproc-per-node', '2', '--min-workers', '3'], /--min-workers: expected an integer from 1 to 2 .*got "3"/],
      [['--elastic', '--nnodes', '1:2'], /--nnodes 1:2: expected MIN:MAX with MIN = MAX \(a node count; --elastic keeps the ranks elastic, not the nodes: see --min-workers\), got "1:2"/],
      [['--nnodes', '1:1'], /--nnodes: expected a positive integer, got "1:1"/],
      [['--elastic', '--engine', 'mpi'], /--engine mpi: expected no --elastic/],
    ];
    for (const [args, message] of cases) {
      it(args.join(' '), async function () {
        const res = await launch([...args, ELASTIC], { env: { COLLECTIVES_TOKEN: 't' } });
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, message);
        assert.equal(res.stdout, '');
      });
    }

    it('--nnodes 1:1 is taken with --elastic', async function () {
      const res = await launch(['--elastic', '--nnodes', '1:1', '--nproc-per-node', '2', '--master-port', '0', path.join(FIXTURES, 'print-env.js')]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(lines(res.stdout).filter((l) => /^\[rank\d\]: \{/.test(l)).length, 2);
    });
  });
});
