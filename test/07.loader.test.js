'use strict';
// The loader (lib/core/loader.ts): where it looks, and what it says when nothing loads: what it
// tried, why each try failed, and what to do. Also the package's two entry points.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
const PLATFORM = `${process.platform}-${process.arch}`;

/** Runs `versions()` of the package at `root` in a child; resolves with its exit code and output. */
function load(root, env = {}) {
  const code = `
    try {
      console.log(JSON.stringify(require(${JSON.stringify(path.join(root, 'dist', 'index.js'))}).versions()));
    } catch (err) {
      console.log(JSON.stringify({ code: err.code, message: err.message }));
      process.exit(3);
    }`;
  const childEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const r = spawnSync(process.execPath, ['-e', code], { env: childEnv, encoding: 'utf8' });
  assert.equal(r.stderr, '', r.stderr);
  return { status: r.status, out: JSON.parse(r.stdout) };
}

/** A copy of the package's dist/ in a temporary folder, with the given prebuilds. */
function fakePackage(prebuilds) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-loader-'));
  fs.cpSync(DIST, path.join(root, 'dist'), { recursive: true });
  for (const [file, content] of Object.entries(prebuilds)) {
    fs.mkdirSync(path.dirname(path.join(root, 'prebuilds', file)), { recursive: true });
    fs.writeFileSync(path.join(root, 'prebuilds', file), content);
  }
  return root;
}

function glibc() {
  return process.report.getReport().header.glibcVersionRuntime;
}

describe('07 loader', function () {
  this.timeout(30000);
  const made = [];
  after(function () {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });

  it('loads the addon and says which file it loaded', function () {
    const r = load(ROOT, { COLLECTIVES_ADDON: undefined });
    assert.equal(r.status, 0, JSON.stringify(r.out));
    assert.match(r.out.addon, /\.node$/);
    assert.ok(fs.existsSync(r.out.addon), r.out.addon);
    assert.match(r.out.gloo, /\S/);
  });

  it('COLLECTIVES_ADDON naming a missing file: says so, tries nothing else, and says what to do', function () {
    const missing = path.join(os.tmpdir(), 'collectives-no-such-dir', 'collectives.node');
    const r = load(ROOT, { COLLECTIVES_ADDON: missing });
    assert.equal(r.status, 3);
    assert.equal(r.out.code, 'BACKEND_UNAVAILABLE');
    const m = r.out.message;
    assert.match(m, new RegExp(`could not load the native addon for ${PLATFORM}`));
    assert.ok(m.includes(`${missing}: not found`), m);
    assert.ok(!m.includes(path.join('build', 'Release')), m);
    assert.match(m, /COLLECTIVES_ADDON is set, so nothing else was tried/);
    assert.match(m, /apt-get install libgloo-dev cmake g\+\+/);
    assert.match(m, /COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives/);
  });

  it('a file that is not a shared library: gives the loader error and names the platform', function () {
    const root = fakePackage({});
    made.push(root);
    const bogus = path.join(root, 'bogus.node');
    fs.writeFileSync(bogus, 'not an ELF file\n');
    const r = load(ROOT, { COLLECTIVES_ADDON: bogus });
    assert.equal(r.status, 3);
    assert.ok(r.out.message.includes(`${bogus}: `), r.out.message);
    assert.match(r.out.message, /invalid ELF header|file too short/);
    assert.ok(r.out.message.includes(`Not a shared library for this platform (${PLATFORM}), or damaged: ${bogus}.`), r.out.message);
  });

  it('prebuilds for other platforms only: lists what the package has', function () {
    const root = fakePackage({ 'darwin-arm64/node.napi.node': 'x', 'win32-x64/node.napi.node': 'x' });
    made.push(root);
    const r = load(root, { COLLECTIVES_ADDON: undefined });
    assert.equal(r.status, 3);
    const m = r.out.message;
    assert.ok(m.includes(path.join(root, 'build', 'Release', 'collectives.node') + ': not found'), m);
    assert.ok(m.includes(`none for ${PLATFORM}; this package has prebuilt addons for darwin-arm64, win32-x64 only`), m);
    assert.match(m, new RegExp(`No prebuilt addon fits ${PLATFORM}`));
  });

  it('a package without prebuilds/: says it has none, not that the platform does not fit', function () {
    const root = fakePackage({});
    made.push(root);
    const r = load(root, { COLLECTIVES_ADDON: undefined });
    assert.equal(r.status, 3);
    const m = r.out.message;
    assert.ok(m.includes(`${path.join(root, 'prebuilds', PLATFORM)}${path.sep}: none in this package`), m);
    assert.match(m, /This package has no prebuilt addon/);
    assert.doesNotMatch(m, /No prebuilt addon fits/);
    assert.doesNotMatch(m, /with glibc only/);
    assert.match(m, /COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives/);
  });

  it('prebuilds for another libc, a newer glibc or a newer Node-API: skipped, each with its reason', function () {
    if (process.platform !== 'linux' || !glibc()) this.skip();
    const root = fakePackage({
      [`${PLATFORM}/node.napi.musl.node`]: 'x',
      [`${PLATFORM}/node.napi.glibc.node`]: 'x',
      [`${PLATFORM}/manifest.json`]: JSON.stringify({ addon: 'node.napi.glibc.node', napi: 8, libc: 'glibc', glibc: '99.1', libraries: [] }),
    });
    made.push(root);
    let r = load(root, { COLLECTIVES_ADDON: undefined });
    assert.equal(r.status, 3);
    let m = r.out.message;
    assert.ok(m.includes(`${path.join(root, 'prebuilds', PLATFORM, 'node.napi.musl.node')}: built for musl; this system's C library is glibc`), m);
    assert.ok(m.includes(`node.napi.glibc.node: needs glibc 99.1 or newer; this system has glibc ${glibc()}`), m);
    assert.match(m, /built on Debian 12: use a system at least as new, or build from source/);
    assert.ok(m.includes(`(glibc ${glibc()}, Node ${process.version}, Node-API ${process.versions.napi})`), m);

    fs.writeFileSync(path.join(root, 'prebuilds', PLATFORM, 'manifest.json'), JSON.stringify({ addon: 'node.napi.glibc.node', napi: 99, libc: 'glibc', libraries: [] }));
    r = load(root, { COLLECTIVES_ADDON: undefined });
    m = r.out.message;
    assert.ok(m.includes(`node.napi.glibc.node: built for Node-API 99; Node ${process.version} has Node-API ${process.versions.napi}`), m);
    assert.match(m, /Use Node\.js 20 or later/);
  });

  it('a prebuild whose shipped libraries are gone: names them and says to reinstall', function () {
    if (process.platform !== 'linux' || !glibc()) this.skip();
    const root = fakePackage({
      [`${PLATFORM}/collectives.glibc.node`]: 'not an ELF file',
      [`${PLATFORM}/libgloo.so.0`]: 'x',
      [`${PLATFORM}/manifest.json`]: JSON.stringify({
        addon: 'collectives.glibc.node', napi: 8, libc: 'glibc', glibc: '2.17',
        libraries: [{ file: 'libgloo.so.0' }, { file: 'libhiredis.so.0.14' }, { file: 'libnl-3.so.200' }],
      }),
    });
    made.push(root);
    const r = load(root, { COLLECTIVES_ADDON: undefined });
    assert.equal(r.status, 3);
    assert.ok(r.out.message.includes(`prebuilds/${PLATFORM}/ lacks libhiredis.so.0.14, libnl-3.so.200, shipped with the addon`), r.out.message);
    assert.match(r.out.message, /reinstall the package \(npm install collectives\)/);
  });

  it('COLLECTIVES_PREBUILDS_ONLY=1 skips a source build', function () {
    const root = fakePackage({});
    made.push(root);
    fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    fs.writeFileSync(path.join(root, 'build', 'Release', 'collectives.node'), 'x');
    const r = load(root, { COLLECTIVES_ADDON: undefined, COLLECTIVES_PREBUILDS_ONLY: '1' });
    assert.equal(r.status, 3);
    assert.ok(!r.out.message.includes(path.join('build', 'Release')), r.out.message);
    assert.match(r.out.message, /none in this package/);
  });

  it('names a missing library, and says where it should have come from', function () {
    const { advice } = require(path.join(DIST, 'core', 'loader.js'));
    const libc = { family: 'glibc', version: '2.36' };
    const dlopen = (lib) => `${lib}: cannot open shared object file: No such file or directory`;
    const prebuilt = advice([{ file: `/p/prebuilds/${PLATFORM}/node.napi.glibc.node`, why: dlopen('libhiredis.so.0.14'), kind: 'failed', prebuild: true }], libc);
    assert.match(prebuilt[0], /missing: libhiredis\.so\.0\.14\. It ships beside the addon in prebuilds\/.*reinstall/);
    const source = advice([{ file: '/p/build/Release/collectives.node', why: dlopen('libgloo.so.0'), kind: 'failed', prebuild: false }], libc);
    assert.match(source[0], /missing: libgloo\.so\.0\. A source build uses the system's Gloo: apt-get install libgloo0/);
    const old = advice([{ file: '/p/x.node', why: "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.30' not found (required by /p/x.node)", kind: 'failed' }], libc);
    assert.match(old[0], /newer C or C\+\+ runtime than this system has \(GLIBCXX_3\.4\.30; this system has glibc 2\.36\)/);
    for (const a of [prebuilt, source, old]) assert.match(a[a.length - 1], /COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives/);
  });
});

describe('07 entry points', function () {
  it('ESM (dist/index.mjs) and CommonJS (dist/index.js) export the same names', async function () {
    const cjs = require(path.join(DIST, 'index.js'));
    const esm = await import(path.join(DIST, 'index.mjs'));
    const names = (o) => Object.keys(o).filter((k) => k !== 'default' && k !== '__esModule').sort();
    assert.deepEqual(names(esm), names(cjs));
    assert.equal(esm.init, cjs.init);
  });

  it('package.json: the exports map points at files that exist, with types for both conditions', function () {
    const pkg = require(path.join(ROOT, 'package.json'));
    const dot = pkg.exports['.'];
    for (const cond of ['import', 'require']) {
      for (const key of ['types', 'default']) assert.ok(fs.existsSync(path.join(ROOT, dot[cond][key])), `${cond}.${key}: ${dot[cond][key]}`);
    }
    for (const bin of Object.values(pkg.bin)) assert.ok(fs.existsSync(path.join(ROOT, bin)), bin);
    assert.equal(pkg.scripts.install, 'node scripts/install.js');
  });
});
