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
const FAKES = path.join(__dirname, 'fixtures', 'fake-gpu');

const { backends, DeviceBuffer, CollectiveError } = require(DIST);

/** Runs `body` (an expression over `c`, the package) in a child with `env`; returns its JSON result. */
function inChild(body, env = {}) {
  const code = `
    const c = require(${JSON.stringify(DIST)});
    let out;
    try { out = ${body}; } catch (e) { out = { thrown: e.name, code: e.code, message: e.message }; }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The fake libraries, compiled once (null where no C compiler is found). */
let tmp;
function compile(name, source, defines = []) {
  const out = path.join(tmp, name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const r = spawnSync('cc', ['-shared', '-fPIC', '-o', out, ...defines, path.join(FAKES, source)], { encoding: 'utf8' });
  return r.status === 0 ? out : null;
}

/** The stand-in for libcollectives_cuda: fake_kernels.cc over the host code (C++, so `c++`). */
function compileKernels(name, defines = []) {
  const out = path.join(tmp, name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const native = path.join(ROOT, 'native');
  const r = spawnSync('c++', ['-shared', '-fPIC', '-std=c++17', '-ffp-contract=off', '-fvisibility=hidden', '-O1', `-I${native}`, '-o', out, ...defines,
    path.join(FAKES, 'fake_kernels.cc'), path.join(native, 'quant', 'codec.cc'), path.join(native, 'ops', 'elementwise.cc')], { encoding: 'utf8' });
  return r.status === 0 ? out : null;
}

describe('45 backends', function () {
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-gpu-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('reports gloo, cuda and nccl, each available or with the reason why not', function () {
    const b = backends();
    assert.deepEqual(Object.keys(b).sort(), ['cuda', 'gloo', 'nccl']);
    assert.equal(b.gloo.available, true);
    assert.equal(typeof b.gloo.version, 'string');
    for (const name of ['cuda', 'nccl']) {
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

  it('the NCCL suite (test/gpu/30) passes against host-memory stand-ins for the CUDA runtime and NCCL', function () {
    const cudart = compile('fake4/libcudart.so.12', 'fake_cudart.c');
    const ncclLib = compile('fake4/libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
    if (!cudart || !ncclLib) this.skip();
    const mocha = require.resolve('mocha/bin/mocha.js');
    // One device: the stand-in NCCL has only 1-rank communicators.
    const r = spawnSync(process.execPath, [mocha, '--no-config', '--reporter', 'dot', path.join(__dirname, 'gpu', '30.nccl.test.js')], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: ncclLib, FAKE_CUDA_DEVICES: '1', FAKE_NCCL_REPORT: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1[0-9] passing/);
    // Every NCCL communicator is released (destroyed or aborted) by exit, once.
    assert.match(r.stderr, /fake-nccl: 0 live communicators\n/);
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
        assert.equal(row[row.length - 1], 'nccl', row.join(' '));
        // #wrong out of place (N/A for broadcast) and in place (N/A for all-to-all on NCCL).
        assert.equal(row[8], op === 'broadcast' ? 'N/A' : '0', `${op}: ${row.join(' ')}`);
        assert.equal(row[12], op === 'alltoall' ? 'N/A' : '0', `${op}: ${row.join(' ')}`);
      }
    }
    const missing = spawnSync(process.execPath, [cli, 'all_reduce', '--backend', 'nccl', '--np', '1', '-b', '8', '-e', '8'], {
      env: { ...process.env, COLLECTIVES_CUDA_LIBRARY: path.join(tmp, 'no-such-cudart.so') },
      encoding: 'utf8',
    });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /collectives-bench: --backend nccl: COLLECTIVES_CUDA_LIBRARY=.*no-such-cudart\.so did not load/);
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
    const body = "c.scale(new c.DeviceBuffer('float32', 4).fill(1), 2)";
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
});
