'use strict';
// Where a rank learns who it is, and init() in a single process: one rank on
// its own, against a store someone else hosts, and through a file store.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const { freePort } = require('./helpers/processes');
const os = require('node:os');
const path = require('node:path');
const { init, rankFromEnvironment, Communicator, CollectiveError } = require('../dist');
const { StoreServer } = require('../dist/store/server.js');
const { FOREIGN } = require('./helpers/launch');

function isInvalidArgument(Kind, pattern) {
  return (err) => {
    assert.ok(err instanceof Kind, `expected a ${Kind.name}, got ${err && err.name}: ${err && err.message}`);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, pattern);
    return true;
  };
}

describe('10 init', function () {
  this.timeout(20000);

  describe('rankFromEnvironment', function () {
    it('reads torchrun (and collectives-run) variables', function () {
      const info = rankFromEnvironment({ RANK: '5', WORLD_SIZE: '8', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '4' });
      assert.deepEqual(info, { rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, source: 'torchrun' });
    });

    it('reads OpenMPI variables', function () {
      const info = rankFromEnvironment({
        OMPI_COMM_WORLD_RANK: '3',
        OMPI_COMM_WORLD_SIZE: '6',
        OMPI_COMM_WORLD_LOCAL_RANK: '0',
        OMPI_COMM_WORLD_LOCAL_SIZE: '3',
      });
      assert.deepEqual(info, { rank: 3, worldSize: 6, localRank: 0, localWorldSize: 3, source: 'openmpi' });
    });

    it('reads Slurm variables', function () {
      const info = rankFromEnvironment({ SLURM_PROCID: '7', SLURM_NTASKS: '16', SLURM_LOCALID: '3' });
      assert.equal(info.rank, 7);
      assert.equal(info.worldSize, 16);
      assert.equal(info.localRank, 3);
      assert.equal(info.source, 'slurm');
    });

    it('prefers torchrun over OpenMPI over Slurm', function () {
      const torch = { RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2' };
      const ompi = { OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '3', OMPI_COMM_WORLD_LOCAL_SIZE: '4' };
      const slurm = { SLURM_PROCID: '5', SLURM_NTASKS: '6', SLURM_LOCALID: '5' };
      assert.deepEqual(rankFromEnvironment({ ...slurm, ...ompi, ...torch }), {
        rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2, source: 'torchrun',
      });
      assert.deepEqual(rankFromEnvironment({ ...slurm, ...ompi }), {
        rank: 3, worldSize: 4, localRank: 3, localWorldSize: 4, source: 'openmpi',
      });
      assert.equal(rankFromEnvironment({ ...slurm, ...torch }).source, 'torchrun');
    });

    it('defaults to rank 0 of 1 with no launcher variables', function () {
      assert.deepEqual(rankFromEnvironment({}), { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, source: 'default' });
      assert.deepEqual(rankFromEnvironment({ PATH: '/usr/bin', HOME: '/root' }).source, 'default');
    });

    it('reads process.env when given no argument', function () {
      const saved = { ...process.env };
      try {
        for (const k of FOREIGN) delete process.env[k];
        process.env.RANK = '2';
        process.env.WORLD_SIZE = '3';
        assert.equal(rankFromEnvironment().rank, 2);
        assert.equal(rankFromEnvironment().worldSize, 3);
      } finally {
        for (const k of FOREIGN) delete process.env[k];
        Object.assign(process.env, saved);
      }
    });

    const notIntegers = ['x', '-1', '1.5', ' ', '0x1', '1e3'];
    const variables = [
      ['RANK', { WORLD_SIZE: '4' }],
      ['WORLD_SIZE', { RANK: '0' }],
      ['LOCAL_RANK', { RANK: '0', WORLD_SIZE: '4' }],
      ['OMPI_COMM_WORLD_RANK', { OMPI_COMM_WORLD_SIZE: '4' }],
      ['OMPI_COMM_WORLD_SIZE', { OMPI_COMM_WORLD_RANK: '0' }],
      ['OMPI_COMM_WORLD_LOCAL_RANK', { OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '4' }],
      ['SLURM_PROCID', { SLURM_NTASKS: '4' }],
      ['SLURM_NTASKS', { SLURM_PROCID: '0' }],
      ['SLURM_LOCALID', { SLURM_PROCID: '0', SLURM_NTASKS: '4' }],
    ];
    /** The values of `name` that rankFromEnvironment accepts, or throws about without naming `name`. */
    function wronglyHandled(name, rest, values) {
      const wrong = [];
      for (const bad of values) {
        const env = { ...rest, [name]: bad };
        try {
          wrong.push(`${JSON.stringify(env)} was accepted as ${JSON.stringify(rankFromEnvironment(env))}`);
        } catch (err) {
          const named = (err instanceof RangeError || err instanceof TypeError) && err.code === 'INVALID_ARGUMENT' && err.message.includes(name);
          if (!named) wrong.push(`${JSON.stringify(env)} threw ${err && err.name} (code ${err && err.code}): ${err && err.message}`);
        }
      }
      return wrong;
    }

    for (const [name, rest] of variables) {
      it(`refuses ${name} values that are not non-negative integers, naming the variable`, function () {
        assert.deepEqual(wronglyHandled(name, rest, notIntegers), []);
      });
    }

    it('refuses WORLD_SIZE without RANK, and RANK without WORLD_SIZE, naming the missing one', function () {
      const missing = (env, name, other) => (err) => {
        assert.ok(err instanceof TypeError, `${err && err.name}: ${err && err.message}`);
        assert.equal(err.code, 'INVALID_ARGUMENT');
        assert.match(err.message, new RegExp(`^environment variable ${name}: expected .*${other}.*, got undefined$`));
        return true;
      };
      assert.throws(() => rankFromEnvironment({ WORLD_SIZE: '2' }), missing({}, 'RANK', 'WORLD_SIZE is 2'));
      assert.throws(() => rankFromEnvironment({ RANK: '1' }), missing({}, 'WORLD_SIZE', 'RANK is 1'));
      assert.throws(() => rankFromEnvironment({ WORLD_SIZE: '2', LOCAL_RANK: '0' }), missing({}, 'RANK', 'WORLD_SIZE'));
      assert.throws(() => rankFromEnvironment({ OMPI_COMM_WORLD_SIZE: '4' }), missing({}, 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE is 4'));
      // An empty value counts as unset, as before; Slurm's allocation shell has SLURM_NTASKS alone.
      assert.equal(rankFromEnvironment({ RANK: '', WORLD_SIZE: '' }).source, 'default');
      assert.equal(rankFromEnvironment({ SLURM_NTASKS: '4' }).source, 'default');
    });

    it('init() with WORLD_SIZE but no RANK rejects instead of starting a world of one', async function () {
      const saved = { ...process.env };
      try {
        for (const k of FOREIGN) delete process.env[k];
        process.env.WORLD_SIZE = '2';
        await assert.rejects(init(), isInvalidArgument(TypeError, /^environment variable RANK:/));
      } finally {
        for (const k of FOREIGN) delete process.env[k];
        Object.assign(process.env, saved);
      }
    });

    it('refuses a world size of 0 and a rank outside the world', function () {
      const wrong = [
        ...wronglyHandled('WORLD_SIZE', { RANK: '0' }, ['0']),
        ...wronglyHandled('RANK', { WORLD_SIZE: '4' }, ['4']),
        ...wronglyHandled('OMPI_COMM_WORLD_SIZE', { OMPI_COMM_WORLD_RANK: '0' }, ['0']),
        ...wronglyHandled('SLURM_PROCID', { SLURM_NTASKS: '2' }, ['2']),
      ];
      assert.deepEqual(wrong, []);
    });
  });

  describe('init()', function () {
    let savedEnv;
    const comms = [];
    const servers = [];
    const dirs = [];

    beforeEach(function () {
      savedEnv = { ...process.env };
      for (const k of FOREIGN) delete process.env[k];
    });

    afterEach(async function () {
      for (const c of comms.splice(0)) await c.destroy();
      for (const s of servers.splice(0)) await s.close();
      for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
      for (const k of FOREIGN) delete process.env[k];
      Object.assign(process.env, savedEnv);
    });

    async function open(options) {
      const comm = await init(options);
      comms.push(comm);
      return comm;
    }

    /** Checks that every collective of a 1-rank communicator is the identity. */
    async function identityCollectives(comm) {
      const a = Float32Array.of(1.5, -2, 3);
      for (const op of ['sum', 'prod', 'min', 'max', 'avg']) {
        await comm.allReduce(a, { op });
        assert.deepEqual([...a], [1.5, -2, 3], `allReduce ${op}`);
      }
      const out = new Float32Array(3);
      await comm.allReduce(a, { output: out });
      assert.deepEqual([...out], [1.5, -2, 3]);
      const ints = BigInt64Array.of(-(2n ** 62n), 7n);
      await comm.allReduce(ints, { op: 'prod' });
      assert.deepEqual([...ints], [-(2n ** 62n), 7n]);
      const g = new Int32Array(2);
      await comm.allGather(Int32Array.of(4, 5), g);
      assert.deepEqual([...g], [4, 5]);
      const rs = new Int8Array(2);
      await comm.reduceScatter(Int8Array.of(-3, 9), rs, { op: 'max' });
      assert.deepEqual([...rs], [-3, 9]);
      const b = Uint8Array.of(1, 2);
      await comm.broadcast(b, { root: 0 });
      assert.deepEqual([...b], [1, 2]);
      const r = Float64Array.of(0.1, 0.2);
      await comm.reduce(r, { root: 0, op: 'avg' });
      assert.deepEqual([...r], [0.1, 0.2]);
      const t = new Uint16Array(2);
      await comm.allToAll(Uint16Array.of(0x3c00, 0x4000), t, { dtype: 'float16' });
      assert.deepEqual([...t], [0x3c00, 0x4000]);
      const v = new Float32Array(3);
      await comm.allToAllV(Float32Array.of(7, 8, 9), [3], v, [3]);
      assert.deepEqual([...v], [7, 8, 9]);
      assert.equal(await comm.barrier(), undefined);
    }

    it('with no options and no launcher variables makes a world of one', async function () {
      const comm = await open();
      assert.ok(comm instanceof Communicator);
      assert.equal(comm.rank, 0);
      assert.equal(comm.size, 1);
      await identityCollectives(comm);
    });

    it('with worldSize 1 works, and every collective is the identity', async function () {
      const comm = await open({ worldSize: 1 });
      assert.equal(comm.rank, 0);
      assert.equal(comm.size, 1);
      await identityCollectives(comm);
    });

    it('reads the launcher variables when no options are given', async function () {
      process.env.RANK = '0';
      process.env.WORLD_SIZE = '1';
      process.env.COLLECTIVES_TIMEOUT_MS = '4321';
      const comm = await open();
      assert.equal(comm.size, 1);
      assert.equal(comm.timeoutMs, 4321);
    });

    it('lets explicit options win over the environment', async function () {
      // A port that is taken: init would fail if it used MASTER_PORT.
      const blocker = net.createServer();
      await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      try {
        process.env.RANK = '1';
        process.env.WORLD_SIZE = '2';
        process.env.MASTER_ADDR = '127.0.0.1';
        process.env.MASTER_PORT = String(blocker.address().port);
        process.env.COLLECTIVES_TIMEOUT_MS = '4321';
        const comm = await open({ rank: 0, worldSize: 1, masterPort: 0, timeoutMs: 9876 });
        assert.equal(comm.rank, 0);
        assert.equal(comm.size, 1);
        assert.equal(comm.timeoutMs, 9876);
        const a = Int32Array.of(3);
        await comm.allReduce(a);
        assert.equal(a[0], 3);
      } finally {
        await new Promise((resolve) => blocker.close(resolve));
      }
    });

    it('uses the token option over COLLECTIVES_TOKEN with a hosted store', async function () {
      const server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: 'right' });
      servers.push(server);
      process.env.COLLECTIVES_STORE_HOSTED = '1';
      process.env.COLLECTIVES_TOKEN = 'wrong';
      const comm = await open({ rank: 0, worldSize: 1, masterPort: server.port, token: 'right', timeoutMs: 3000 });
      assert.equal(comm.size, 1);
      await comm.barrier();
    });

    it('rejects a wrong token with STORE_REFUSED', async function () {
      const server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: 'right' });
      servers.push(server);
      process.env.COLLECTIVES_STORE_HOSTED = '1';
      const t0 = Date.now();
      await assert.rejects(init({ rank: 1, worldSize: 2, masterPort: server.port, token: 'wrong', timeoutMs: 3000 }), (err) => {
        assert.ok(err instanceof CollectiveError, `expected a CollectiveError, got ${err && err.name}: ${err && err.message}`);
        assert.equal(err.code, 'STORE_REFUSED', err.message);
        assert.equal(err.rank, 1);
        assert.equal(err.operation, 'init');
        return true;
      });
      assert.ok(Date.now() - t0 < 3000, `a refusal should not wait for the timeout (took ${Date.now() - t0} ms)`);
    });

    it('meets through a file store', async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-filestore-'));
      dirs.push(dir);
      const comm = await open({ worldSize: 1, storePath: dir });
      assert.equal(comm.rank, 0);
      assert.equal(comm.size, 1);
      await identityCollectives(comm);
    });

    it('rejects bad options with INVALID_ARGUMENT naming the option', async function () {
      await assert.rejects(init({ worldSize: 0 }), isInvalidArgument(RangeError, /^options\.worldSize/));
      await assert.rejects(init({ worldSize: 1.5 }), isInvalidArgument(TypeError, /^options\.worldSize/));
      await assert.rejects(init({ rank: 2, worldSize: 2 }), isInvalidArgument(RangeError, /^options\.rank/));
      await assert.rejects(init({ worldSize: 1, timeoutMs: 0 }), isInvalidArgument(RangeError, /^options\.timeoutMs/));
      await assert.rejects(init({ worldSize: 1, masterPort: 70000 }), isInvalidArgument(RangeError, /^options\.masterPort/));
      await assert.rejects(init({ worldSize: 1, storePath: '' }), isInvalidArgument(TypeError, /^options\.storePath/));
      await assert.rejects(init({ worldSize: 1, token: 5 }), isInvalidArgument(TypeError, /^options\.token/));
      await assert.rejects(init({ world_size: 1 }), isInvalidArgument(TypeError, /^options\.world_size/));
      await assert.rejects(init('rank 0'), isInvalidArgument(TypeError, /^options/));
    });

    it('rejects a rank outside the world size given by the environment', async function () {
      process.env.RANK = '3';
      process.env.WORLD_SIZE = '2';
      await assert.rejects(init(), (err) => err.code === 'INVALID_ARGUMENT' && /rank/i.test(err.message));
    });

    it('names the environment variable when MASTER_PORT or COLLECTIVES_TIMEOUT_MS is bad', async function () {
      process.env.MASTER_PORT = 'abc';
      await assert.rejects(init({ worldSize: 1 }), isInvalidArgument(TypeError, /^MASTER_PORT: expected a number, got "abc"/));
      delete process.env.MASTER_PORT;
      process.env.COLLECTIVES_TIMEOUT_MS = '0';
      await assert.rejects(init({ worldSize: 1 }), isInvalidArgument(RangeError, /^COLLECTIVES_TIMEOUT_MS:/));
      delete process.env.COLLECTIVES_TIMEOUT_MS;
    });

    it('rejects with STORE_ERROR naming the address when rank 0 cannot host the store', async function () {
      const squatter = net.createServer();
      await new Promise((resolve) => squatter.listen(0, '127.0.0.1', resolve));
      const { port } = squatter.address();
      try {
        await assert.rejects(
          init({ rank: 0, worldSize: 2, masterPort: port, token: 't', timeoutMs: 2000 }),
          (err) =>
            err instanceof CollectiveError &&
            err.code === 'STORE_ERROR' &&
            err.message.includes(`127.0.0.1:${port}`),
        );
      } finally {
        await new Promise((resolve) => squatter.close(resolve));
      }
    });

    it('rejects with STORE_ERROR naming MASTER_ADDR when the store host does not resolve', async function () {
      const unresolvable = (name) => (err) => {
        assert.ok(err instanceof CollectiveError, `${err && err.name}: ${err && err.message}`);
        assert.equal(err.code, 'STORE_ERROR');
        assert.equal(err.operation, 'init');
        assert.ok(err.message.startsWith(`init on rank 1: ${name} "no-such-host.invalid"`), err.message);
        assert.match(err.message, /does not resolve \(ENOTFOUND|EAI_AGAIN/);
        return true;
      };
      process.env.MASTER_ADDR = 'no-such-host.invalid';
      await assert.rejects(init({ rank: 1, worldSize: 2, token: 't', timeoutMs: 2000 }), unresolvable('MASTER_ADDR'));
      delete process.env.MASTER_ADDR;
      await assert.rejects(
        init({ rank: 1, worldSize: 2, masterAddr: 'no-such-host.invalid', token: 't', timeoutMs: 2000 }),
        unresolvable('options.masterAddr'),
      );
    });

    it('says which rank did not join when the rendezvous times out', async function () {
      const port = await freePort();
      const started = Date.now();
      await assert.rejects(init({ rank: 0, worldSize: 4, masterPort: port, token: 't', timeoutMs: 1500 }), (err) => {
        assert.ok(err instanceof CollectiveError, `${err && err.name}: ${err && err.message}`);
        assert.equal(err.code, 'TIMEOUT');
        assert.match(err.message, /^init on rank 0: ranks? [0-9, ]+ of 4 did not join within 1500 ms/);
        assert.match(err.message, /rank 1|ranks 1,/);
        return true;
      });
      assert.ok(Date.now() - started < 10000);
    });

    it('names the missing rank when other ranks joined', async function () {
      const port = await freePort();
      const others = [1, 2].map((rank) => init({ rank, worldSize: 4, masterPort: port, token: 't', timeoutMs: 2000 }));
      const first = init({ rank: 0, worldSize: 4, masterPort: port, token: 't', timeoutMs: 1500 });
      const results = await Promise.allSettled([first, ...others]);
      const m = results[0].reason && results[0].reason.message;
      assert.match(m, /^init on rank 0: rank 3 of 4 did not join within 1500 ms/);
    });
  });
});

describe('10 init: options.signal', function () {
  this.timeout(40000);
  const { spawnSync } = require('node:child_process');
  const path = require('node:path');
  const { StoreServer } = require('../dist/store/server.js');

  it('an aborted rendezvous rejects with ABORTED at once, and does not keep the process alive until its timeout', async function () {
    const server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: 'sig' });
    try {
      // Rank 1 of 2 whose rank 0 never comes: without the signal it would wait 30 s.
      const code = `const { init } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
        const t0 = Date.now();
        const c = new AbortController();
        setTimeout(() => c.abort(new Error('given up by the test')), 300);
        init({ rank: 1, worldSize: 2, timeoutMs: 30000, signal: c.signal }).then(
          () => console.log(JSON.stringify({ joined: true })),
          (e) => console.log(JSON.stringify({ code: e.code, message: e.message, ms: Date.now() - t0 })));`;
      const started = Date.now();
      const r = spawnSync(process.execPath, ['-e', code], {
        env: { ...process.env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(server.port), COLLECTIVES_TOKEN: 'sig', COLLECTIVES_STORE_HOSTED: '1', COLLECTIVES_RUN_ID: 'sig' },
        encoding: 'utf8',
        timeout: 35000,
      });
      const took = Date.now() - started;
      const out = JSON.parse(r.stdout.trim());
      assert.equal(out.code, 'ABORTED', r.stdout + r.stderr);
      assert.match(out.message, /the rendezvous was given up: given up by the test/);
      assert.ok(out.ms < 5000, `rejected after ${out.ms} ms`);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(took < 15000, `the process lived ${took} ms, as if the rendezvous' 30 s timeout held it`);
    } finally {
      await server.close();
    }
  });

  it('a signal already aborted, or not a signal, is refused before the rendezvous', async function () {
    const c = new AbortController();
    c.abort();
    await assert.rejects(init({ rank: 0, worldSize: 1, signal: c.signal }), (e) => e.code === 'ABORTED' && /before the rendezvous began/.test(e.message));
    await assert.rejects(init({ rank: 0, worldSize: 1, signal: {} }), (e) => e.code === 'INVALID_ARGUMENT' && /^options\.signal: expected an AbortSignal/.test(e.message));
  });
});
