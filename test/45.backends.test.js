'use strict';
// backends() and the run-time loading of the CUDA runtime and NCCL: where they are searched,
// what the reason says when they are not usable, and that DeviceBuffer then fails with
// BACKEND_UNAVAILABLE instead of crashing. Runs on any machine: each case loads the package in
// a child process (the search runs once per process) with the environment it needs, and small
// stand-in libraries built here play a CUDA runtime and NCCL of chosen versions.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist', 'index.js');
const DIST_OPS = path.join(ROOT, 'dist', 'ops', 'index.js');

const { compileFake, compileFakeKernels, fakeGpuEnv } = require('./helpers/fake-gpu');
const { backends, DeviceBuffer, CollectiveError } = require(DIST);

/** Runs `body` (an expression over `c`, the package) in a child with `env`; returns its JSON result. */
function inChild(body, env = {}) {
  const code = `
    const c = { ...require(${JSON.stringify(DIST)}), ...require(${JSON.stringify(DIST_OPS)}) };
    let out;
    try { out = ${body}; } catch (e) { out = { thrown: e.name, code: e.code, message: e.message }; }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The fake libraries, each compiled into this suite's temporary folder (null where no C compiler is found). */
let tmp;
const compile = (name, source, defines = []) => compileFake(tmp, name, source, defines);
const compileKernels = (name, defines = []) => compileFakeKernels(tmp, name, defines);

/**
 * Runs `script` (a file) on 2 ranks through collectives-run with the stand-in CUDA runtime and
 * NCCL (from `fakes`) and `env`; returns the JSON each rank printed after 'RESULT ', in rank order
 * of printing.
 */
function launchOnFakes(fakes, script, args, env) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'launch', 'cli.js'), '--nproc-per-node', '2', '--master-port', '0', '--no-prefix', script, ...args], {
    env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: fakes.cudart, COLLECTIVES_NCCL_LIBRARY: fakes.nccl, FAKE_CUDA_DEVICES: '1', ...env },
    encoding: 'utf8',
    timeout: 50000,
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const results = r.stdout.split('\n').filter((l) => l.includes('RESULT ')).map((l) => JSON.parse(l.slice(l.indexOf('RESULT ') + 7)));
  assert.ok(results.length > 0, r.stdout);
  return results;
}

describe('45 backends', function () {
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-gpu-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('reports gloo, cuda, nccl and mpi, each available or with the reason why not', function () {
    const b = backends();
    assert.deepEqual(Object.keys(b).sort(), ['cuda', 'gloo', 'mpi', 'nccl']);
    assert.equal(b.gloo.available, true);
    assert.equal(typeof b.gloo.version, 'string');
    for (const name of ['cuda', 'nccl', 'mpi']) {
      const s = b[name];
      assert.equal(typeof s.available, 'boolean');
      assert.ok(Array.isArray(s.tried));
      if (s.available) {
        assert.match(s.version, /^\d+\.\d+/);
        assert.equal(typeof s.library, 'string');
        assert.equal(s.reason, undefined);
      } else {
        assert.equal(typeof s.reason, 'string');
        assert.ok(s.reason.length > 20, s.reason);
      }
    }
    if (!b.nccl.available && b.nccl.library === undefined) {
      // Not found at all: the reason says where it looked and how to fix it.
      assert.match(b.nccl.reason, /libnccl\.so\.2 not found; searched .*\/usr\/lib/);
      assert.match(b.nccl.reason, /COLLECTIVES_NCCL_LIBRARY/);
      assert.ok(b.nccl.tried.length > 3);
    }
    if (b.cuda.available) assert.ok(b.cuda.devices > 0);
    // The kernels of the device ops, under cuda: found (with its C API version) or why not.
    const k = b.cuda.kernels;
    assert.equal(typeof k.available, 'boolean');
    assert.ok(Array.isArray(k.tried));
    if (k.available) assert.deepEqual([typeof k.library, k.version, k.reason], ['string', '1', undefined]);
    else assert.match(k.reason, /libcollectives_cuda\.so/);
    assert.deepEqual(backends(), b, 'the answer is kept for the process');
    console.log(`      cuda: ${b.cuda.available ? `${b.cuda.version}, ${b.cuda.devices} devices` : b.cuda.reason}`);
    console.log(`      nccl: ${b.nccl.available ? b.nccl.version : b.nccl.reason}`);
    console.log(`      cuda kernels: ${k.available ? k.library : k.reason}`);
  });

  it('the addon does not link the CUDA runtime, NCCL or its CUDA kernels', function () {
    const addon = require(DIST).versions().addon;
    const r = spawnSync('readelf', ['-d', addon], { encoding: 'utf8' });
    if (r.status !== 0) this.skip();
    const needed = r.stdout.split('\n').filter((l) => l.includes('(NEEDED)'));
    assert.ok(needed.length > 0, r.stdout);
    for (const line of needed) assert.doesNotMatch(line, /cudart|nccl|libcuda|collectives_cuda/, line);
  });

  it('an explicit COLLECTIVES_NCCL_LIBRARY / COLLECTIVES_CUDA_LIBRARY that does not load is named in the reason', function () {
    const missing = path.join(tmp, 'no-such-libnccl.so.2');
    const garbage = path.join(tmp, 'garbage.so');
    fs.writeFileSync(garbage, 'not a shared library');
    const b = inChild('c.backends()', { COLLECTIVES_NCCL_LIBRARY: missing, COLLECTIVES_CUDA_LIBRARY: garbage });
    assert.equal(b.nccl.available, false);
    assert.equal(b.nccl.reason, `COLLECTIVES_NCCL_LIBRARY=${missing} did not load: no such file`);
    assert.equal(b.cuda.available, false);
    assert.ok(b.cuda.reason.startsWith(`COLLECTIVES_CUDA_LIBRARY=${garbage} did not load: `), b.cuda.reason);
    assert.match(b.cuda.reason, /garbage\.so/);
  });

  it('without a usable CUDA runtime, DeviceBuffer throws BACKEND_UNAVAILABLE with the reason', function () {
    const env = { COLLECTIVES_CUDA_LIBRARY: path.join(tmp, 'no-cudart.so') };
    const r = inChild("new c.DeviceBuffer('float32', 16)", env);
    assert.equal(r.thrown, 'CollectiveError');
    assert.equal(r.code, 'BACKEND_UNAVAILABLE');
    assert.match(r.message, /CUDA is not available: COLLECTIVES_CUDA_LIBRARY=.*no-cudart\.so did not load/);
    // The same in this process, whatever this machine has, when CUDA is not usable here.
    if (!backends().cuda.available) {
      assert.throws(() => new DeviceBuffer('float32', 16), (e) => e instanceof CollectiveError && e.code === 'BACKEND_UNAVAILABLE' && e.message.includes(backends().cuda.reason));
    }
  });

  it('argument errors come before availability errors', function () {
    const env = { COLLECTIVES_CUDA_LIBRARY: path.join(tmp, 'no-cudart.so') };
    let r = inChild("new c.DeviceBuffer('float33', 16)", env);
    assert.deepEqual([r.thrown, r.code], ['TypeError', 'INVALID_ARGUMENT']);
    assert.match(r.message, /^dtype: expected one of float32/);
    r = inChild("new c.DeviceBuffer('int8', -1)", env);
    assert.deepEqual([r.thrown, r.code], ['RangeError', 'INVALID_ARGUMENT']);
    assert.match(r.message, /^length/);
    r = inChild("new c.DeviceBuffer('int8', 4, { device: 0.5 })", env);
    assert.deepEqual([r.thrown, r.code], ['TypeError', 'INVALID_ARGUMENT']);
    assert.match(r.message, /^options\.device/);
  });

  it('searches LD_LIBRARY_PATH and Python site-packages (NVIDIA wheels), recording why each candidate failed', function () {
    const ld = path.join(tmp, 'ld');
    const site = path.join(tmp, 'site');
    const wheel = path.join(site, 'nvidia', 'nccl', 'lib');
    fs.mkdirSync(ld, { recursive: true });
    fs.mkdirSync(wheel, { recursive: true });
    fs.writeFileSync(path.join(ld, 'libnccl.so.2'), 'bad');
    fs.writeFileSync(path.join(wheel, 'libnccl.so.2'), 'bad');
    const b = inChild('c.backends().nccl', {
      LD_LIBRARY_PATH: ld,
      COLLECTIVES_PYTHON_SITE: site,
      COLLECTIVES_NCCL_LIBRARY: '',
    });
    const at = (p) => b.tried.findIndex((t) => t.startsWith(`${p}: `));
    const first = at(path.join(ld, 'libnccl.so.2'));
    const second = at(path.join(wheel, 'libnccl.so.2'));
    assert.ok(first >= 0 && second > first, JSON.stringify(b.tried));
    assert.doesNotMatch(b.tried[first], /no such file/);
    if (!b.available) assert.match(b.reason, new RegExp(`${ld}/libnccl\\.so\\.2 \\(`));
  });

  it('checks the NCCL version at load and names a missing symbol and its library', function () {
    const old = compile('old/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=21005']);
    if (!old) this.skip();
    const partial = compile('partial/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=21903', '-DPARTIAL']);
    const full = compile('full/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    let s = inChild('c.backends().nccl', { COLLECTIVES_NCCL_LIBRARY: old });
    assert.equal(s.available, false);
    assert.equal(s.reason, `libnccl.so.2 at ${old} is NCCL 2.10.5; collectives needs 2.12.0 or later`);
    s = inChild('c.backends().nccl', { COLLECTIVES_NCCL_LIBRARY: partial });
    assert.equal(s.available, false);
    assert.equal(s.reason, `symbol ncclGetUniqueId not found in ${partial}`);
    s = inChild('c.backends().nccl', { COLLECTIVES_NCCL_LIBRARY: full });
    assert.deepEqual([s.available, s.version, s.library], [true, '2.21.5', full]);
    // Found through LD_LIBRARY_PATH too.
    s = inChild('c.backends().nccl', { LD_LIBRARY_PATH: path.dirname(full), COLLECTIVES_NCCL_LIBRARY: '' });
    assert.deepEqual([s.available, s.library], [true, full]);
  });

  it('a CUDA runtime that sees no device leaves cuda unavailable, saying so', function () {
    const fake = compile('fake/libcudart.so.12', 'fake_cudart.c');
    if (!fake) this.skip();
    const b = inChild('c.backends().cuda', { COLLECTIVES_CUDA_LIBRARY: fake, FAKE_CUDA_DEVICES: '0' });
    assert.equal(b.available, false);
    assert.equal(b.version, '12.4');
    assert.equal(b.devices, 0);
    assert.equal(b.reason, `libcudart.so.12: found at ${fake} but cudaGetDeviceCount failed (error 100: no CUDA-capable device is detected)`);
    const r = inChild("new c.DeviceBuffer('float32', 1)", { COLLECTIVES_CUDA_LIBRARY: fake, FAKE_CUDA_DEVICES: '0' });
    assert.deepEqual([r.thrown, r.code], ['CollectiveError', 'BACKEND_UNAVAILABLE']);
  });

  it('device memory is released by free() and by the garbage collector, once', function () {
    const fake = compile('fake3/libcudart.so.12', 'fake_cudart.c');
    if (!fake) this.skip();
    const code = `
      const c = require(${JSON.stringify(DIST)});
      for (let i = 0; i < 100; i++) new c.DeviceBuffer('float32', 1024).fill(i);
      for (let i = 0; i < 100; i++) { const b = new c.DeviceBuffer('int8', 64); b.subarray(8).free(); b.free(); b.free(); }
      const parent = new c.DeviceBuffer('uint8', 16);
      globalThis.view = parent.subarray(4);
      (async () => {
        for (let i = 0; i < 20; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
        console.log(globalThis.view.copyTo().length);
        new c.DeviceBuffer('uint8', 12345).free(); // the stand-in reports the live count
      })();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', code], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: fake, FAKE_CUDA_REPORT: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    // The view still reads its parent's memory: the one allocation left after GC. At exit the
    // environment's teardown releases it, and nothing is freed twice (the count would go below 0).
    assert.equal(r.stdout.trim(), '12');
    assert.match(r.stderr, /fake-cuda probe: 1 live\n/);
    assert.match(r.stderr, /fake-cuda: 0 live allocations\n/);
  });

  it('the GPU suite (test/gpu) passes against a host-memory stand-in for the CUDA runtime', function () {
    const fake = compile('fake2/libcudart.so.12', 'fake_cudart.c');
    if (!fake) this.skip();
    const mocha = require.resolve('mocha/bin/mocha.js');
    const r = spawnSync(process.execPath, [mocha, '--no-config', '--expose-gc', '--reporter', 'dot', path.join(__dirname, 'gpu', '10.device-buffer.test.js')], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: fake, FAKE_CUDA_DEVICES: '2' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\d+ passing/);
    assert.doesNotMatch(r.stdout, /pending/);
  });

  it('the NCCL suite (test/gpu/30) passes against host-memory stand-ins for the CUDA runtime and NCCL, with and without ncclAlltoAll', function () {
    const cudart = compile('fake4/libcudart.so.12', 'fake_cudart.c');
    if (!cudart) this.skip();
    const mocha = require.resolve('mocha/bin/mocha.js');
    // NCCL 2.21 (all-to-all as grouped send/recv) and 2.28 (ncclAlltoAll).
    for (const [dir, defines, algorithm] of [['fake4', ['-DVERSION=22105'], 'nccl send/recv'], ['fake4b', ['-DVERSION=22803', '-DALLTOALL'], 'nccl alltoall']]) {
      const ncclLib = compile(`${dir}/libnccl.so.2`, 'fake_nccl.c', defines);
      // One device: the stand-in NCCL has only 1-rank communicators.
      const r = spawnSync(process.execPath, [mocha, '--no-config', '--reporter', 'dot', path.join(__dirname, 'gpu', '30.nccl.test.js')], {
        env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: ncclLib, FAKE_CUDA_DEVICES: '1', FAKE_NCCL_REPORT: '1', COLLECTIVES_TEST_ALLTOALL: algorithm },
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /[12][0-9] passing/);
      // Every NCCL communicator is released (destroyed or aborted) by exit, once.
      assert.match(r.stderr, /fake-nccl: 0 live communicators\n/);
      if (algorithm === 'nccl alltoall') assert.match(r.stderr, /fake-nccl: [1-9]\d* ncclAlltoAll calls\n/);
    }
  });

  it('collectives-bench --backend nccl runs every operation on DeviceBuffers, #wrong 0, against the stand-ins', function () {
    const cudart = compile('fake6/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake6/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    if (!cudart || !ncclLib) this.skip();
    const cli = path.join(__dirname, '..', 'dist', 'bench', 'cli.js');
    const env = { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: ncclLib, FAKE_CUDA_DEVICES: '1' };
    for (const op of ['all_reduce', 'reduce_scatter', 'all_gather', 'alltoall', 'broadcast', 'reduce']) {
      const r = spawnSync(process.execPath, [cli, op, '--backend', 'nccl', '--np', '1', '-b', '8', '-e', '4K', '-f', '8', '-c', '1', '-n', '2', '-w', '1', '-d', 'all'], {
        env,
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `${op}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /backend nccl/);
      const rows = r.stdout.split('\n').filter((l) => /^\s+\d/.test(l)).map((l) => l.trim().split(/\s+/));
      assert.ok(rows.length >= 8, `${op}: ${r.stdout}`);
      for (const row of rows) {
        // What runs it, as comm.algorithm(op, bytes, { device: true }) says: NCCL 2.21 has no ncclAlltoAll.
        if (op === 'alltoall') assert.deepEqual(row.slice(-2), ['nccl', 'send/recv'], row.join(' '));
        else assert.equal(row[row.length - 1], 'nccl', row.join(' '));
        // #wrong out of place (N/A for broadcast) and in place (N/A for all-to-all on NCCL).
        assert.equal(row[8], op === 'broadcast' ? 'N/A' : '0', `${op}: ${row.join(' ')}`);
        assert.equal(row[12], op === 'alltoall' ? 'N/A' : '0', `${op}: ${row.join(' ')}`);
      }
    }
    // The quantized operations on DeviceBuffers: the CUDA codec (here its stand-in) and NCCL.
    const kernels = compileKernels('fake6/libcollectives_cuda.so');
    if (kernels) {
      for (const op of ['all_reduce_quantized', 'reduce_scatter_quantized', 'all_gather_quantized', 'alltoall_quantized']) {
        const r = spawnSync(process.execPath, [cli, op, '--backend', 'nccl', '--np', '1', '-b', '1K', '-e', '64K', '-f', '8', '-c', '1', '-n', '2', '-w', '1', '-q', 'int4'], {
          env: { ...env, COLLECTIVES_CUDA_KERNELS: kernels },
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, `${op}: ${r.stdout}${r.stderr}`);
        const rows = r.stdout.split('\n').filter((l) => /^\s+\d/.test(l)).map((l) => l.trim().split(/\s+/));
        assert.equal(rows.length, 3, `${op}: ${r.stdout}`);
        for (const row of rows) {
          assert.equal(row[8], '0', `${op}: ${row.join(' ')}`);
          assert.deepEqual(row.slice(-4), ['int4,', 'blocks', 'of', '256'], row.join(' '));
        }
      }
    }
    const missing = spawnSync(process.execPath, [cli, 'all_reduce', '--backend', 'nccl', '--np', '1', '-b', '8', '-e', '8'], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: path.join(tmp, 'no-such-cudart.so') },
      encoding: 'utf8',
    });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /collectives-bench: --backend nccl: COLLECTIVES_CUDA_LIBRARY=.*no-such-cudart\.so did not load/);
  });

  it('bench/gpu-call-cost.js issues and checks every call against the stand-ins, and says why the C++ loop did not run', function () {
    this.timeout(120000);
    const cudart = compile('fake7/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake7/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22304']);
    if (!cudart || !ncclLib) this.skip();
    const json = path.join(tmp, 'gpu-call-cost.json');
    const [iters, warmup, rounds] = [50, 3, 2];
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'gpu-call-cost.js'), '--iters', String(iters), '--warmup', String(warmup), '--rounds', String(rounds), '--json', json], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: ncclLib, FAKE_CUDA_DEVICES: '1', FAKE_NCCL_REPORT: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // Each round's rank made warm-up + pipelined + awaited calls, all of them reaching NCCL.
    const calls = r.stderr.match(/fake-nccl: \d+ ncclAllReduce calls/g).filter((l) => !l.includes(' 0 '));
    assert.deepEqual(calls, Array(rounds).fill(`fake-nccl: ${warmup + 2 * iters} ncclAllReduce calls`), r.stderr);
    assert.match(r.stdout, new RegExp(`^# gpu-call-cost: ${iters} one-element float32 all-reduces on 1 rank, best of ${rounds}`, 'm'));
    // The C++ loop links the real CUDA runtime, which finds no GPU here (or is not built; on a GPU
    // machine it would meet the stand-in NCCL and fail): said, not hidden.
    assert.match(r.stdout, /^# C\+\+ loop not run: \S.{10,}/m);
    const rows = r.stdout.split('\n').filter((l) => /^ {2}(pipelined|awaited) /.test(l)).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(rows.map((row) => [row[0], row[1], row[3], row[4], row[5], row[6], row.slice(7).join(' ')]), [
      ['pipelined', 'n/a', 'n/a', '<=', '+5', 'us', 'not measured'],
      ['awaited', 'n/a', 'n/a', '<=', '+5', 'us', 'not measured'],
    ]);
    for (const row of rows) assert.ok(Number(row[2]) > 0, row.join(' '));
    const report = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.deepEqual([report.iters, report.warmup, report.rounds, report.target_us, report.nccl], [iters, warmup, rounds, 5, '2.23.4']);
    assert.equal(report.measured.js.length, rounds);
    for (const m of report.measured.js) assert.deepEqual(m.resolved, { pipelined: iters, awaited: iters });
    assert.deepEqual(report.rows.map((x) => [x.mode, x.cpp_us, x.diff_us, x.met]), [['pipelined', null, null, null], ['awaited', null, null, null]]);
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'gpu-call-cost.js'), '--iters', '0'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /gpu-call-cost: --iters: expected a positive integer, got '0'/);
  });

  /** Runs `code` (a script over `c`, the package) with the stand-in CUDA runtime and NCCL; returns its last stdout line as JSON. */
  function withFakes(dir, code, env = {}, ncclDefines = []) {
    const cudart = compile(`${dir}/libcudart.so.12`, 'fake_cudart.c');
    const ncclLib = compile(`${dir}/libnccl.so.2`, 'fake_nccl.c', ['-DVERSION=22105', ...ncclDefines]);
    if (!cudart || !ncclLib) return null;
    const script = `const c = require(${JSON.stringify(DIST)});\n(async () => {\n${code}\n})().catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: ncclLib, FAKE_CUDA_DEVICES: '1', FAKE_NCCL_REPORT: '1', FAKE_CUDA_REPORT: '1', ...env },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /fake-nccl: 0 live communicators\n/);
    return { out: JSON.parse(r.stdout.trim().split('\n').pop()), stderr: r.stderr };
  }

  it('device collectives complete off the queue thread: the next call is issued while the device runs, completions keep issue order', function () {
    // Each event completes 300 ms after it is recorded. Waiting for each in turn on the queue
    // thread would take 10 x 300 ms; issued back to back they finish together.
    const r = withFakes('fake7', `
      const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
      const bufs = Array.from({ length: 10 }, (_, i) => new c.DeviceBuffer('int32', 4).fill(i));
      const order = [];
      const t0 = Date.now();
      const works = bufs.map((b, i) => comm.allReduce(b).wait().then(() => order.push(i)));
      const host = Float32Array.of(7);
      works.push(comm.allReduce(host).wait().then(() => order.push('host')));
      await Promise.all(works);
      const elapsed = Date.now() - t0;
      const values = bufs.map((b) => b.copyTo()[0]);
      for (const b of bufs) b.free();
      await comm.destroy();
      console.log(JSON.stringify({ order, elapsed, values }));`, { FAKE_CUDA_EVENT_DELAY_MS: '300' });
    if (!r) this.skip();
    const { order, elapsed, values } = r.out;
    // The host call issued last ran while the device calls were still in flight.
    assert.deepEqual(order, ['host', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(elapsed >= 290 && elapsed < 1500, `${elapsed} ms`);
    assert.deepEqual(values, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('group(fn): the calls inside complete once enqueued, the group when the event recorded at ncclGroupEnd fires', function () {
    const r = withFakes('fake13', `
      const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
      const a = new c.DeviceBuffer('float32', 4).fill(1.5);
      const t = new c.DeviceBuffer('float32', 4);
      const at = {};
      const t0 = Date.now();
      const inner = [];
      const g = comm.group(() => {
        inner.push(comm.allReduce(a).wait().then(() => (at.allReduce = Date.now() - t0)));
        inner.push(comm.allToAll(a, t).wait().then(() => (at.allToAll = Date.now() - t0)));
      });
      await g.wait();
      at.group = Date.now() - t0;
      await Promise.all(inner);
      const values = Array.from(t.copyTo());
      a.free();
      t.free();
      await comm.destroy();
      console.log(JSON.stringify({ at, values }));`, { FAKE_CUDA_EVENT_DELAY_MS: '300' });
    if (!r) this.skip();
    const { at, values } = r.out;
    // The group's event fires 300 ms after ncclGroupEnd, which comes after both enqueues.
    assert.ok(at.group - Math.max(at.allReduce, at.allToAll) >= 250, JSON.stringify(at));
    assert.deepEqual(values, [1.5, 1.5, 1.5, 1.5]);
  });

  it('a device call that times out aborts the NCCL communicator: calls enqueued behind it fail ABORTED, the next one gets a fresh communicator', function () {
    const r = withFakes('fake8', `
      const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
      const b = new c.DeviceBuffer('float32', 4).fill(2);
      process.env.FAKE_CUDA_EVENT_HANG = '1';
      const settled = await Promise.allSettled([0, 1, 2].map(() => comm.allReduce(b, { timeoutMs: 200 }).wait()));
      delete process.env.FAKE_CUDA_EVENT_HANG;
      const out = settled.map((s) => s.status === 'rejected' ? [s.reason.name, s.reason.code, s.reason.operation] : 'ok');
      await comm.allReduce(b, { timeoutMs: 200 }).wait();
      out.push('ok', Array.from(b.copyTo()));
      b.free();
      await comm.destroy();
      console.log(JSON.stringify(out));`);
    if (!r) this.skip();
    assert.deepEqual(r.out, [
      ['CollectiveError', 'TIMEOUT', 'allReduce'],
      ['CollectiveError', 'ABORTED', 'allReduce'],
      ['CollectiveError', 'ABORTED', 'allReduce'],
      'ok',
      [2, 2, 2, 2],
    ]);
  });

  it('free() of a DeviceBuffer an in-flight device call uses: unusable at once, the memory released when the call settles', function () {
    // Events complete 300 ms after they are recorded; the stand-in reports how many allocations
    // are live whenever one of 12345 bytes is made.
    const r = withFakes('fake9', `
      const probe = () => new c.DeviceBuffer('uint8', 12345).free();
      const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
      const a = new c.DeviceBuffer('int32', 4).fill(5);
      const out = new c.DeviceBuffer('int32', 4).fill(0);
      const view = a.subarray(1, 3);
      const w = comm.allReduce(a, { output: out });
      const v = comm.allReduce(view);
      a.free();
      out.free();
      const after = [a.freed, out.freed, view.freed];
      const uses = [() => comm.allReduce(a), () => comm.allReduce(view), () => out.copyTo(), () => a.fill(1)].map((f) => {
        try { f(); return 'no throw'; } catch (e) { return e.code; }
      });
      probe(); // both allocations still live: the calls are in flight
      const results = await Promise.allSettled([w.wait(), v.wait()]);
      await new Promise((r) => setImmediate(r));
      probe(); // released once both settled
      await comm.destroy();
      console.log(JSON.stringify({ after, uses, results: results.map((x) => x.status) }));`, { FAKE_CUDA_EVENT_DELAY_MS: '300' });
    if (!r) this.skip();
    assert.deepEqual(r.out, {
      after: [true, true, true],
      uses: ['DESTROYED', 'DESTROYED', 'DESTROYED', 'DESTROYED'],
      results: ['fulfilled', 'fulfilled'],
    });
    const probes = [...r.stderr.matchAll(/fake-cuda probe: (\d+) live/g)].map((m) => Number(m[1]));
    assert.deepEqual(probes, [2, 0]);
    // Released once, never twice (the count would go below 0).
    assert.match(r.stderr, /fake-cuda: 0 live allocations\n/);
  });

  it('abort() with a device call in flight and its buffer freed: ABORTED at once, the NCCL communicator aborted, the memory released once', function () {
    // The device never finishes and the timeout is long: only abort() can end the call.
    const r = withFakes('fake10', `
      const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
      const a = new c.DeviceBuffer('float32', 8).fill(1);
      const w = comm.allReduce(a, { timeoutMs: 60000 });
      await new Promise((r) => setTimeout(r, 50)); // enqueued, now with the waiter
      a.free();
      comm.abort();
      const res = await w.wait().then(() => 'ok', (e) => e.code);
      await new Promise((r) => setTimeout(r, 300)); // the waiter gives the call back
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setImmediate(r)); }
      new c.DeviceBuffer('uint8', 12345).free();
      console.log(JSON.stringify(res));`, { FAKE_CUDA_EVENT_HANG: '1' });
    if (!r) this.skip();
    assert.equal(r.out, 'ABORTED');
    assert.match(r.stderr, /fake-cuda probe: 0 live/);
    assert.match(r.stderr, /fake-cuda: 0 live allocations\n/);
  });

  it('joining the NCCL communicator is bounded by the call\'s timeout where NCCL has ncclCommInitRankConfig; older NCCL joins blocking', function () {
    const code = `
      const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
      const b = new c.DeviceBuffer('int32', 3).fill(4);
      const out = [];
      const t0 = Date.now();
      try { await comm.allReduce(b, { timeoutMs: 300 }).wait(); out.push('ok'); }
      catch (e) { out.push([e.name, e.code, e.operation, Date.now() - t0 >= 250 ? 'waited' : 'quick', e.message]); }
      delete process.env.FAKE_NCCL_INIT_HANG;
      await comm.allReduce(b, { timeoutMs: 300 }).wait(); // a fresh join succeeds
      out.push(Array.from(b.copyTo()));
      b.free();
      await comm.destroy();
      console.log(JSON.stringify(out));`;
    const hung = withFakes('fake11', code, { FAKE_NCCL_INIT_HANG: '1' });
    if (!hung) this.skip();
    const [failure, values] = hung.out;
    assert.deepEqual(failure.slice(0, 4), ['CollectiveError', 'TIMEOUT', 'allReduce', 'waited']);
    assert.match(failure[4], /ncclCommInitRankConfig: rank 0 of 1 did not finish joining the NCCL communicator within 300 ms/);
    assert.deepEqual(values, [4, 4, 4]);
    // Before NCCL 2.14 there is no non-blocking init: the blocking one runs (and cannot hang here).
    const old = withFakes('fake12', code, { FAKE_NCCL_INIT_HANG: '1' }, ['-DNO_INIT_CONFIG']);
    assert.deepEqual(old.out, ['ok', [4, 4, 4]]);
  });

  it('device collectives: the watchdog turns a hang into TIMEOUT and an asynchronous NCCL error into PEER_LOST; no NCCL is BACKEND_UNAVAILABLE', function () {
    const cudart = compile('fake5/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake5/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    if (!cudart || !ncclLib) this.skip();
    const code = `
      const c = require(${JSON.stringify(DIST)});
      (async () => {
        const comm = await c.init({ rank: 0, worldSize: 1, masterPort: 0 });
        const b = new c.DeviceBuffer('float32', 4);
        const out = [];
        for (let i = 0; i < 2; i++) {
          const t0 = Date.now();
          try { await comm.allReduce(b, { timeoutMs: 300 }).wait(); out.push('ok'); }
          catch (e) { out.push([e.name, e.code, Date.now() - t0 >= 250 ? 'waited' : 'quick', e.message]); }
        }
        await comm.allReduce(new Float32Array(2)).wait(); // Gloo is unaffected
        b.free();
        await comm.destroy();
        console.log(JSON.stringify(out));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const run = (env) => {
      const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: ncclLib, FAKE_CUDA_DEVICES: '1', FAKE_NCCL_REPORT: '1', ...env }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      if (!env.COLLECTIVES_NCCL_LIBRARY) assert.match(r.stderr, /fake-nccl: 0 live communicators\n/);
      return JSON.parse(r.stdout.trim().split('\n').pop());
    };
    let out = run({ FAKE_CUDA_EVENT_HANG: '1' });
    for (const o of out) {
      assert.deepEqual(o.slice(0, 3), ['CollectiveError', 'TIMEOUT', 'waited']);
      assert.match(o[3], /NCCL communicator was aborted/);
    }
    out = run({ FAKE_CUDA_EVENT_HANG: '1', FAKE_NCCL_ASYNC_ERROR: '6' });
    for (const o of out) assert.deepEqual(o.slice(0, 3), ['CollectiveError', 'PEER_LOST', 'quick']);
    out = run({ COLLECTIVES_NCCL_LIBRARY: path.join(tmp, 'no-libnccl.so.2') });
    for (const o of out) {
      assert.deepEqual(o.slice(0, 2), ['CollectiveError', 'BACKEND_UNAVAILABLE']);
      assert.match(o[3], /NCCL is not available/);
    }
  });

  it('the CUDA kernels library: COLLECTIVES_CUDA_KERNELS, else beside the addon; its API version is checked', function () {
    this.timeout(120000);
    const cudart = compile('fake7/libcudart.so.12', 'fake_cudart.c');
    const kernels = compileKernels('fake7/libcollectives_cuda.so');
    if (!cudart || !kernels) this.skip();
    const env = { COLLECTIVES_CUDA_LIBRARY: cudart, FAKE_CUDA_DEVICES: '1' };
    let k = inChild('c.backends().cuda.kernels', { ...env, COLLECTIVES_CUDA_KERNELS: kernels });
    assert.deepEqual([k.available, k.library, k.version, k.reason], [true, kernels, '1', undefined]);
    const missing = path.join(tmp, 'no-such-libcollectives_cuda.so');
    k = inChild('c.backends().cuda.kernels', { ...env, COLLECTIVES_CUDA_KERNELS: missing });
    assert.equal(k.available, false);
    assert.equal(k.reason, `COLLECTIVES_CUDA_KERNELS=${missing} did not load: no such file`);
    const v2 = compileKernels('fake8/libcollectives_cuda.so', ['-DAPI_VERSION=2']);
    k = inChild('c.backends().cuda.kernels', { ...env, COLLECTIVES_CUDA_KERNELS: v2 });
    assert.equal(k.available, false);
    assert.match(k.reason, /^libcollectives_cuda\.so at .*fake8\/libcollectives_cuda\.so has API version 2; this addon needs version 1/);
    // Beside the addon file (build/Release, prebuilds/linux-x64): a copy of the addon in a folder
    // with the kernels library in it finds that one first.
    const addon = require(DIST).versions().addon;
    const folder = path.join(tmp, 'addon-folder');
    fs.mkdirSync(folder, { recursive: true });
    fs.copyFileSync(addon, path.join(folder, 'collectives.node'));
    fs.copyFileSync(kernels, path.join(folder, 'libcollectives_cuda.so'));
    k = inChild('c.backends().cuda.kernels', { ...env, COLLECTIVES_ADDON: path.join(folder, 'collectives.node'), COLLECTIVES_CUDA_KERNELS: '' });
    assert.deepEqual([k.available, k.library], [true, path.join(folder, 'libcollectives_cuda.so')]);
    // Not beside it: the addon's folder is the first place tried, and the reason names it.
    fs.rmSync(path.join(folder, 'libcollectives_cuda.so'));
    k = inChild('c.backends().cuda.kernels', { ...env, COLLECTIVES_ADDON: path.join(folder, 'collectives.node'), COLLECTIVES_CUDA_KERNELS: '' });
    if (!k.available) {
      assert.match(k.reason, /^libcollectives_cuda\.so \(the CUDA kernels\) not found; searched /);
      assert.ok(k.reason.includes(folder), k.reason);
      assert.ok(k.tried[0].startsWith(`${path.join(folder, 'libcollectives_cuda.so')}: `), k.tried[0]);
    }
  });

  it('device ops without the kernels library are BACKEND_UNAVAILABLE with the reason; a failed launch is INTERNAL', function () {
    this.timeout(120000);
    const cudart = compile('fake9/libcudart.so.12', 'fake_cudart.c');
    const kernels = compileKernels('fake9/libcollectives_cuda.so');
    if (!cudart || !kernels) this.skip();
    const env = { COLLECTIVES_CUDA_LIBRARY: cudart, FAKE_CUDA_DEVICES: '1' };
    const body = "c.scale(2, new c.DeviceBuffer('float32', 4).fill(1))";
    let r = inChild(body, { ...env, COLLECTIVES_CUDA_KERNELS: path.join(tmp, 'no-kernels.so') });
    assert.deepEqual([r.thrown, r.code], ['CollectiveError', 'BACKEND_UNAVAILABLE']);
    assert.match(r.message, /^scale: the CUDA kernels are not available: COLLECTIVES_CUDA_KERNELS=.*no-kernels\.so did not load/);
    r = inChild("c.quantize(new c.DeviceBuffer('float32', 4).fill(1))", { ...env, COLLECTIVES_CUDA_KERNELS: kernels, FAKE_KERNELS_FAIL: '700' });
    assert.deepEqual([r.thrown, r.code], ['CollectiveError', 'INTERNAL']);
    assert.equal(r.message, 'quantize: collectives_cuda_quantize failed (error 700: an illegal memory access was encountered)');
  });

  it('the device-ops suite (test/gpu/25) passes against host-memory stand-ins for the CUDA runtime and the kernels', function () {
    this.timeout(120000);
    const cudart = compile('fake10/libcudart.so.12', 'fake_cudart.c');
    const kernels = compileKernels('fake10/libcollectives_cuda.so');
    if (!cudart || !kernels) this.skip();
    const mocha = require.resolve('mocha/bin/mocha.js');
    // Two devices: the suite's check of buffers on different devices runs too.
    const r = spawnSync(process.execPath, [mocha, '--no-config', '--reporter', 'dot', path.join(__dirname, 'gpu', '25.device-ops.test.js')], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_CUDA_KERNELS: kernels, FAKE_CUDA_DEVICES: '2', FAKE_CUDA_REPORT: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1\d passing/);
    assert.doesNotMatch(r.stdout, /pending/);
    // Every device buffer the suite allocated, including the outputs quantize and dequantize made, is freed.
    assert.match(r.stderr, /fake-cuda: 0 live allocations\n/);
  });

  it('the GPU training suite (test/gpu/50) passes against host-memory stand-ins for the CUDA runtime, NCCL and the kernels', function () {
    this.timeout(120000);
    const env = fakeGpuEnv(path.join(tmp, 'fake50'));
    if (env === null) this.skip();
    const mocha = require.resolve('mocha/bin/mocha.js');
    const r = spawnSync(process.execPath, [mocha, '--no-config', '--timeout', '120000', path.join(__dirname, 'gpu', '50.training.test.js')], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /4 passing/);
    assert.doesNotMatch(r.stdout, /pending/);
    // The stand-ins compute as the host does, so every case gives the host's bits.
    assert.match(r.stdout, /the host's bits: none, bf16, int8 of 3 cases/);
    assert.match(r.stdout, /the host's bits: stage1, stage2, stage3, zeroPP of 4 cases/);
    assert.match(r.stdout, /the host's bits: diloco false, diloco int8, ddp of 3 cases/);
  });

  it('the device quantized suite (test/gpu/40) passes against host-memory stand-ins for the CUDA runtime, NCCL and the kernels', function () {
    this.timeout(120000);
    const cudart = compile('fake13/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake13/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    const kernels = compileKernels('fake13/libcollectives_cuda.so');
    if (!cudart || !ncclLib || !kernels) this.skip();
    const mocha = require.resolve('mocha/bin/mocha.js');
    // One device: the stand-in NCCL has only 1-rank communicators.
    const r = spawnSync(process.execPath, [mocha, '--no-config', '--reporter', 'dot', path.join(__dirname, 'gpu', '40.quantized.test.js')], {
      env: {
        ...process.env,
        COLLECTIVES_CUDA_LIBRARY: cudart,
        COLLECTIVES_NCCL_LIBRARY: ncclLib,
        COLLECTIVES_CUDA_KERNELS: kernels,
        FAKE_CUDA_DEVICES: '1',
        FAKE_CUDA_REPORT: '1',
        FAKE_NCCL_REPORT: '1',
      },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\d+ passing/);
    assert.match(r.stdout, /1 pending/, 'only the 2-GPU case is skipped');
    assert.match(r.stderr, /fake-nccl: 0 live communicators\n/);
  });

  it('COLLECTIVES_DEBUG=detail: a device call against a host call, and device calls that differ, reject with MISMATCH before NCCL is joined', function () {
    this.timeout(60000);
    const cudart = compile('fake14/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake14/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    if (!cudart || !ncclLib) this.skip();
    // Two ranks on the stand-ins (whose NCCL cannot join 2 ranks: every device call here must
    // be stopped by the fingerprint before it gets there).
    const script = path.join(tmp, 'device-mismatch.js');
    fs.writeFileSync(script, `
      const c = require(${JSON.stringify(DIST)});
      (async () => {
        const comm = await c.init();
        const r = comm.rank;
        const out = [];
        const b = new c.DeviceBuffer('float32', 8);
        const calls = [
          () => (r === 0 ? comm.allReduce(b) : comm.allReduce(new Float32Array(8))),
          () => comm.allReduce(r === 0 ? b : b.subarray(0, 4)),
          () => comm.allReduce(b, { op: r === 0 ? 'sum' : 'max' }),
        ];
        for (const call of calls) {
          try { await call().wait(); out.push('resolved'); } catch (e) { out.push([e.code, e.message]); }
        }
        const h = Float32Array.of(r + 1);
        await comm.allReduce(h).wait();
        out.push(h[0]);
        b.free();
        await comm.destroy();
        console.log('RESULT ' + JSON.stringify(out));
      })().catch((e) => { console.error(e); process.exit(1); });`);
    const results = launchOnFakes({ cudart, nccl: ncclLib }, script, [], { COLLECTIVES_DEBUG: 'detail' });
    assert.equal(results.length, 2, JSON.stringify(results));
    for (const out of results) {
      assert.equal(out.length, 4, JSON.stringify(out));
      for (const [code] of out.slice(0, 3)) assert.equal(code, 'MISMATCH', JSON.stringify(out));
      assert.match(out[0][1], /rank 0 called allReduce\(float32 × 8, sum, on device\) #\d+; rank 1 called allReduce\(float32 × 8, sum\) #\d+/);
      assert.match(out[1][1], /rank 0 called allReduce\(float32 × 8, sum, on device\).*rank 1 called allReduce\(float32 × 4, sum, on device\)/);
      assert.match(out[2][1], /rank 1 called allReduce\(float32 × 8, max, on device\)/);
      assert.equal(out[3], 3, 'the communicator stays usable: an exact host all-reduce after the mismatches');
    }
  });

  it('device work completes while a host receive on the same communicator still waits for its peer, and the reverse', function () {
    this.timeout(60000);
    const cudart = compile('fake15/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake15/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    if (!cudart || !ncclLib) this.skip();
    // Rank 0 posts a receive and makes device calls (the stand-in NCCL lets it join alone,
    // FAKE_NCCL_ANY_SIZE). 'slow-peer': rank 1 sends after 1.5 s, device events complete at
    // once. 'slow-device': rank 1 sends at once, each device event takes 1.5 s.
    const script = path.join(tmp, 'lanes.js');
    fs.writeFileSync(script, `
      const c = require(${JSON.stringify(DIST)});
      const slowPeer = process.argv[2] === 'slow-peer';
      (async () => {
        const comm = await c.init();
        const t0 = Date.now();
        const at = () => Date.now() - t0;
        if (comm.rank === 0) {
          const host = new Float32Array(4);
          const d = new c.DeviceBuffer('float32', 4).fill(3);
          const recv = comm.recv(host, 1).then(() => at());
          const device = comm.allReduce(d).then(() => at());
          const times = { recv: await recv, device: await device };
          console.log('RESULT ' + JSON.stringify({ ...times, host: Array.from(host), d: Array.from(d.copyTo()) }));
          d.free();
        } else {
          if (slowPeer) await new Promise((r) => setTimeout(r, 1500));
          await comm.send(Float32Array.of(1, 2, 3, 4), 0).wait();
        }
        await comm.barrier().wait();
        await comm.destroy();
      })().catch((e) => { console.error(e); process.exit(1); });`);
    const run = (mode, env) => {
      const [out] = launchOnFakes({ cudart, nccl: ncclLib }, script, [mode], { FAKE_NCCL_ANY_SIZE: '1', ...env });
      assert.deepEqual(out.host, [1, 2, 3, 4]);
      assert.deepEqual(out.d, [3, 3, 3, 3]);
      return out;
    };
    const peer = run('slow-peer', {});
    assert.ok(peer.recv >= 1400, `the receive completed at ${peer.recv} ms, before its peer sent`);
    assert.ok(peer.device < peer.recv - 500, `the device call completed at ${peer.device} ms, held back by the receive (${peer.recv} ms)`);
    const device = run('slow-device', { FAKE_CUDA_EVENT_DELAY_MS: '1500' });
    assert.ok(device.device >= 1400, `the device call completed at ${device.device} ms, before its event`);
    assert.ok(device.recv < device.device - 500, `the receive completed at ${device.recv} ms, held back by the device call (${device.device} ms)`);
  });

  it('examples/gpu-step.js runs its quantized all-reduce and AdamW step on the stand-ins', function () {
    this.timeout(60000);
    const cudart = compile('fake16/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake16/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    const kernels = compileKernels('fake16/libcollectives_cuda.so');
    if (!cudart || !ncclLib || !kernels) this.skip();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'launch', 'cli.js'), '--nproc-per-node', '1', '--master-port', '0', path.join(ROOT, 'examples', 'gpu-step.js')], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: ncclLib, COLLECTIVES_CUDA_KERNELS: kernels, FAKE_CUDA_DEVICES: '1', FAKE_CUDA_REPORT: '1' },
      encoding: 'utf8',
      timeout: 50000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // AdamW's first step from p = 1, m = v = 0: p(1 - lr·wd) - lr·g/(|g| + eps), here with g the
    // 1-rank average of sin(i) after int8 quantization (same sign, so the step is lr·sign(g)).
    const want = [0, 1, 2, 3].map((i) => {
      const g = Math.sin(i);
      return (1 - 1e-3 * 1e-2 - (g === 0 ? 0 : 1e-3 * Math.sign(g))).toFixed(6);
    });
    assert.match(r.stdout, new RegExp(`rank 0 on GPU 0: step done, param\\[0\\.\\.3\\] = ${want.join(', ').replace(/\./g, '\\.')}`));
    assert.match(r.stderr, /fake-cuda: 0 live allocations/);
  });
});
