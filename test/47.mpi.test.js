'use strict';
// The MPI engine (native/mpi/, docs/mpi.md): the package without MPI, then
// every collective × dtype on 1–4 ranks started by mpirun, the quantized
// collectives and subgroups over MPI, the default choice under mpirun, and a
// killed rank. The tests that need Open MPI skip, saying why, where mpirun or
// libmpi is missing (.ci/run installs openmpi-bin and libopenmpi-dev).

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { assertCases, collectivesCases, parseCases, ranksOf, launched } = require('./helpers/cases');
const { mpirunWorker, skipWithoutMpi } = require('./helpers/mpirun');
const { SUBGROUP_CASES } = require('./helpers/subgroup-cases');

const DIST = path.join(__dirname, '..', 'dist');

/** Runs `code` in a fresh Node.js with `env` added; returns its parsed JSON stdout. */
function probe(code, env) {
  const r = spawnSync(process.execPath, ['-e', code], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(r.status, 0, `probe failed:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function assertRan(res, what) {
  assert.ok(!res.killed, `${what}: mpirun was stopped after ${res.ms} ms (hung?)\n${launched(res)}`);
  assert.equal(res.code, 0, `${what}: mpirun exited with ${res.code}\n${launched(res)}`);
}

// The case lists of test/35 and test/40, whose workers run here under mpirun.
const QUANTIZED_CASES = [
  ...['int8', 'int4', 'fp8e4m3', 'fp8e5m2'].flatMap((f) => [`allToAll ${f}`, `reduceScatter ${f}`, `allGather ${f}`, `allReduce ${f} sum`, `allReduce ${f} avg`]),
  'allReduce of 2 elements',
  'allReduce bfloat16',
  'error feedback',
];

describe('47 MPI engine', function () {
  describe('without MPI', function () {
    const NO_MPI = { COLLECTIVES_MPI_LIBRARY: '/nonexistent/libmpi.so.40' };

    it('loads, and backends().mpi says why MPI is unavailable', function () {
      const got = probe(`const c = require(${JSON.stringify(DIST)}); console.log(JSON.stringify(c.backends().mpi));`, NO_MPI);
      assert.equal(got.available, false);
      assert.match(got.reason, /COLLECTIVES_MPI_LIBRARY=\/nonexistent\/libmpi\.so\.40 did not load/);
      assert.ok(Array.isArray(got.tried) && got.tried.length === 1, JSON.stringify(got));
      assert.equal(got.initialized, false);
      assert.equal(got.isDefault, false);
    });

    it("init({ engine: 'mpi' }) fails with BACKEND_UNAVAILABLE, and the default stays Gloo even under mpirun's variables", function () {
      const code = `
        const c = require(${JSON.stringify(DIST)});
        (async () => {
          const out = {};
          try { await c.init({ engine: 'mpi' }); out.mpi = 'resolved'; } catch (e) { out.mpi = e.code; out.message = e.message; }
          const comm = await c.init();
          out.engine = comm.engine;
          out.isDefault = c.backends().mpi.isDefault;
          out.defaultReason = c.backends().mpi.defaultReason;
          await comm.destroy();
          console.log(JSON.stringify(out));
        })();`;
      const got = probe(code, { ...NO_MPI, OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '1', MASTER_PORT: '0' });
      assert.equal(got.mpi, 'BACKEND_UNAVAILABLE', got.message);
      assert.match(got.message, /MPI engine is not available/);
      assert.equal(got.engine, 'gloo');
      assert.equal(got.isDefault, false);
      assert.match(got.defaultReason, /libmpi did not load/);
    });

    it('refuses an engine it does not know, naming the option', function () {
      const code = `
        const c = require(${JSON.stringify(DIST)});
        c.init({ engine: 'tcp' }).then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
      const got = probe(code, {});
      assert.equal(got.code, 'INVALID_ARGUMENT');
      assert.match(got.message, /options\.engine/);
    });
  });

  describe("collectives-run's mpirun command", function () {
    it('adds --allow-run-as-root as root, and --oversubscribe with yielding when ranks outnumber cores', function () {
      const { mpirunArgs } = require('../dist/launch/mpirun.js');
      const cmd = { file: '/usr/bin/node', args: ['a.js', '--x'] };
      const plain = mpirunArgs(2, cmd, 4, false);
      assert.deepEqual(plain.slice(0, 2), ['-np', '2']);
      assert.ok(!plain.includes('--allow-run-as-root') && !plain.includes('--oversubscribe'), plain.join(' '));
      assert.deepEqual(plain.slice(-3), ['/usr/bin/node', 'a.js', '--x']);
      const busy = mpirunArgs(4, cmd, 2, true);
      for (const flag of ['--allow-run-as-root', '--oversubscribe', 'mpi_yield_when_idle']) assert.ok(busy.includes(flag), busy.join(' '));
      for (const name of ['COLLECTIVES_ENGINE', 'MASTER_ADDR', 'MASTER_PORT', 'COLLECTIVES_TOKEN']) assert.ok(busy.includes(name), `-x ${name}`);
    });
  });

  describe('under mpirun', function () {
    before(function () {
      skipWithoutMpi(this);
    });

    for (const np of [1, 2, 3, 4]) {
      it(`every collective × dtype matches bit for bit on ${np} rank${np > 1 ? 's' : ''}`, async function () {
        this.timeout(90000);
        const res = await mpirunWorker('collectives.js', { np, env: { COLLECTIVES_ENGINE: 'mpi' }, killAfterMs: 80000 });
        assertCases(res.stdout, ranksOf(np), collectivesCases(np), launched(res));
        assertRan(res, `collectives on ${np} MPI ranks`);
      });
    }

    it('picks MPI by default, and runs point-to-point, a monitored barrier and two communicators at once', async function () {
      this.timeout(60000);
      const res = await mpirunWorker('mpi-engine.js', { np: 3, killAfterMs: 50000 });
      const cases = ['init picks MPI under mpirun', 'send/recv in a ring', 'monitored barrier', "large all-reduces (the engine's ring)", 'several communicators in flight at once'];
      assertCases(res.stdout, ranksOf(3), cases, launched(res));
      assertRan(res, 'the default engine under mpirun');
    });

    it('collectives-run --engine mpi hands the job to mpirun', async function () {
      this.timeout(60000);
      const cli = path.join(__dirname, '..', 'dist', 'launch', 'cli.js');
      const worker = path.join(__dirname, 'workers', 'mpi-engine.js');
      const env = { ...process.env };
      for (const k of Object.keys(env)) if (/^(OMPI_|PMIX_|MASTER_|COLLECTIVES_(ENGINE|TOKEN|STORE_HOSTED|RUN_ID))/.test(k) || k === 'RANK' || k === 'WORLD_SIZE') delete env[k];
      const res = await new Promise((resolve) => {
        const { spawn } = require('node:child_process');
        const child = spawn(process.execPath, [cli, '--engine', 'mpi', '--nproc-per-node', '3', '--master-port', '0', worker], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGTERM'), 50000);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr, killed: false, ms: 0 });
        });
      });
      const cases = ['init picks MPI under mpirun', 'send/recv in a ring', 'monitored barrier', "large all-reduces (the engine's ring)", 'several communicators in flight at once'];
      assertCases(res.stdout, ranksOf(3), cases, launched(res));
      assert.equal(res.code, 0, launched(res));
    });

    it('splits into subgroups through MPI (4 ranks)', async function () {
      this.timeout(60000);
      const res = await mpirunWorker('subgroups.js', { np: 4, env: { COLLECTIVES_ENGINE: 'mpi' }, killAfterMs: 50000 });
      assertCases(res.stdout, ranksOf(4), SUBGROUP_CASES, launched(res));
      assertRan(res, 'subgroups on 4 MPI ranks');
    });

    for (const np of [2, 3]) {
      it(`runs the quantized collectives over MPI's byte exchanges on ${np} ranks, the ranks agreeing bit for bit`, async function () {
        this.timeout(60000);
        const res = await mpirunWorker('quantized.js', { np, env: { COLLECTIVES_ENGINE: 'mpi' }, killAfterMs: 50000 });
        const cases = assertCases(res.stdout, ranksOf(np), QUANTIZED_CASES, launched(res));
        assertRan(res, `quantized collectives on ${np} MPI ranks`);
        for (const name of QUANTIZED_CASES) {
          const hashes = new Set(ranksOf(np).map((r) => cases.get(r).find((c) => c.case === name).hash).filter((h) => h !== undefined));
          assert.ok(hashes.size <= 1, `${name}: the ranks' outputs differ (${[...hashes].join(', ')})`);
        }
      });
    }

    it('a killed rank fails the others with PEER_LOST or TIMEOUT, never a hang', async function () {
      this.timeout(60000);
      // Without --enable-recovery mpirun ends the whole job at the first
      // death, before the survivors could say anything.
      const res = await mpirunWorker('mpi-peer-lost.js', { np: 3, mpirunArgs: ['--enable-recovery'], killAfterMs: 40000 });
      assert.ok(!res.killed, `mpirun was stopped after ${res.ms} ms: a rank hung\n${launched(res)}`);
      const byRank = parseCases(res.stdout);
      assertCases(byRank, [0, 1], ['a killed peer fails the allReduce', 'the broken communicator'], launched(res));
      for (const r of [0, 1]) {
        const code = byRank.get(r).find((c) => c.case === 'a killed peer fails the allReduce').code;
        console.log(`      rank ${r}: ${code}`);
      }
    });
  });
});
