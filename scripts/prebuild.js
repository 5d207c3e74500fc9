#!/usr/bin/env node
'use strict';
// Makes the prebuilt addon that the package ships (`npm run build:prebuild`), in
// prebuilds/<platform>-<arch>/:
//
//   collectives.glibc.node the addon, Node-API 8, stripped: prebuildify's name and layout, which
//                          node-gyp-build reads too (prebuildify --napi --strip --tag-libc)
//   libgloo.so.0, …        Gloo and every library it needs that is not the C or C++ runtime,
//                          copied from the system and found through RUNPATH $ORIGIN
//   libcollectives_cuda.so the CUDA kernels of the device operations, stripped, when the build made
//                          them (nvcc found): the addon opens it at run time from its own folder;
//                          it needs only the driver's libcuda.so.1 (the CUDA runtime is inside)
//   manifest.json          what is there and what it needs (read by lib/core/loader.ts)
//   licenses/              the copyright files of the shipped libraries' Debian packages
//
// Needs what a source build needs (libgloo-dev, cmake, g++) plus patchelf. prebuildify moves the
// addon out of build/Release, so afterwards the loader in this checkout finds the prebuild until
// the next source build (npm run build:native).

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const PLATFORM = `${process.platform}-${process.arch}`;
const OUT = path.join(ROOT, 'prebuilds', PLATFORM);
const NAPI = 8;

// What the prebuild may take from the system: the C library and the C++ runtime, which every
// Linux system with Node.js has. Everything else it needs ships beside it.
const SYSTEM = /^(linux-vdso\.so|ld-linux[\w.-]*\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libstdc\+\+\.so|libgcc_s\.so)/;

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

function have(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** ldd's view of a file: [{ name, file }] for every library it needs, directly or not. */
function ldd(file) {
  const out = execFileSync('ldd', [file], { encoding: 'utf8' });
  const libs = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+)(?: => (\S+|not found))?/.exec(line);
    if (!m || !m[1]) continue;
    if (m[2] === 'not found') fail(`${path.basename(file)} needs ${m[1]}, which is not found`);
    const resolved = m[2] && m[2].startsWith('/') ? m[2] : m[1].startsWith('/') ? m[1] : undefined;
    libs.push({ name: path.basename(m[1]), file: resolved });
  }
  return libs;
}

/** The Debian package that installed a file, and its version, when dpkg knows. */
function debianPackage(file) {
  for (const f of [file, fs.realpathSync(file)]) {
    const r = spawnSync('dpkg', ['-S', f], { encoding: 'utf8' });
    if (r.status === 0) {
      const name = r.stdout.split(':')[0].trim();
      const version = spawnSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' }).stdout.trim();
      return { name, version };
    }
  }
  return undefined;
}

/** The newest symbol version of a family (GLIBC, GLIBCXX) that any of the files asks for. */
function newestVersion(files, family) {
  let best;
  const re = new RegExp(`${family}_(\\d+(?:\\.\\d+)+)\\0`, 'g');
  for (const f of files) {
    for (const m of fs.readFileSync(f).toString('latin1').matchAll(re)) {
      if (!best || compare(m[1], best) > 0) best = m[1];
    }
  }
  return best;
}

function compare(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

function prebuildify() {
  let run;
  try {
    run = require('prebuildify');
  } catch {
    fail('prebuildify is not installed: run npm install (it is a devDependency)');
  }
  return new Promise((resolve, reject) => {
    run(
      {
        cwd: ROOT,
        napi: true,
        strip: true,
        tagLibc: true,
        targets: [`node@${process.versions.node}`],
        nodeGyp: path.join(__dirname, 'prebuild-backend.js'),
      },
      (err) => (err ? reject(err) : resolve()),
    );
  });
}

async function main() {
  if (process.platform !== 'linux') fail(`prebuilds are made on Linux only, not ${process.platform}`);
  for (const tool of ['patchelf', 'strip', 'ldd', 'readelf']) {
    if (!have(tool)) fail(`${tool} is missing (apt-get install ${tool === 'patchelf' ? 'patchelf' : 'binutils libc-bin'})`);
  }
  fs.rmSync(OUT, { recursive: true, force: true });
  await prebuildify();

  const addons = fs.readdirSync(OUT).filter((f) => f.endsWith('.node'));
  if (addons.length !== 1) fail(`expected one addon in ${OUT}, found ${addons.join(', ') || 'none'}`);
  const addon = path.join(OUT, addons[0]);

  // Ship every library the addon needs, directly or through Gloo, that is not the C/C++ runtime.
  const shipped = [];
  for (const lib of ldd(addon)) {
    if (SYSTEM.test(lib.name)) continue;
    if (!lib.file) fail(`cannot tell where ${lib.name} comes from`);
    const dest = path.join(OUT, lib.name);
    fs.copyFileSync(fs.realpathSync(lib.file), dest);
    fs.chmodSync(dest, 0o644);
    execFileSync('strip', ['--strip-unneeded', dest]);
    shipped.push({ file: lib.name, from: lib.file, ...(() => {
      const p = debianPackage(lib.file);
      return p ? { package: p.name, version: p.version } : {};
    })() });
  }
  if (!shipped.some((l) => l.file.startsWith('libgloo'))) fail('the addon does not link libgloo: nothing to ship');

  // Each file finds the others beside it, wherever the package is installed.
  for (const f of [addon, ...shipped.map((l) => path.join(OUT, l.file))]) {
    execFileSync('patchelf', ['--set-rpath', '$ORIGIN', f]);
  }

  // Prove it: every library that is not the C/C++ runtime now resolves inside OUT.
  for (const lib of ldd(addon)) {
    if (SYSTEM.test(lib.name)) continue;
    if (!lib.file || path.dirname(lib.file) !== OUT) fail(`${lib.name} resolves to ${lib.file}, not ${OUT}`);
  }

  const kernels = shipKernels();

  const licenses = path.join(OUT, 'licenses');
  fs.mkdirSync(licenses, { recursive: true });
  for (const l of shipped) {
    const copyright = l.package && `/usr/share/doc/${l.package}/copyright`;
    if (!copyright || !fs.existsSync(copyright)) continue;
    const text = fs.readFileSync(copyright, 'utf8');
    fs.writeFileSync(path.join(licenses, `${l.package}.txt`), text);
    // Debian's copyright files point at the full texts of the common licenses (LGPL-2.1, GPL-2):
    // ship those too.
    for (const m of text.matchAll(/\/usr\/share\/common-licenses\/([\w.+-]+)/g)) {
      const full = `/usr/share/common-licenses/${m[1].replace(/\.$/, '')}`;
      if (fs.existsSync(full)) fs.copyFileSync(full, path.join(licenses, path.basename(full)));
    }
  }

  // The kernels count too: the addon loads them at run time, and they fail there if too new.
  const files = [addon, ...shipped.map((l) => path.join(OUT, l.file)), ...(kernels ? [path.join(OUT, kernels.file)] : [])];
  const gloo = shipped.find((l) => l.file.startsWith('libgloo'));
  const manifest = {
    addon: path.basename(addon),
    napi: NAPI,
    libc: 'glibc',
    glibc: newestVersion(files, 'GLIBC'),
    glibcxx: newestVersion(files, 'GLIBCXX'),
    gloo: gloo && gloo.version ? `${gloo.package} ${gloo.version}` : undefined,
    builtOn: `${osRelease()}, Node ${process.version}`,
    libraries: shipped.map(({ file, package: pkg, version }) => ({ file, package: pkg, version })),
    ...(kernels ? { cudaKernels: kernels } : {}),
  };
  fs.writeFileSync(path.join(OUT, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

  console.log(`prebuild: ${path.relative(ROOT, OUT)}/`);
  for (const f of fs.readdirSync(OUT).sort()) {
    const st = fs.statSync(path.join(OUT, f));
    console.log(`  ${f.padEnd(28)} ${st.isDirectory() ? '(folder)' : `${(st.size / 1024).toFixed(0)} KiB`}`);
  }
  console.log(`prebuild: needs glibc >= ${manifest.glibc} and libstdc++ with GLIBCXX_${manifest.glibcxx} from the system, nothing else.`);
}

/** NEEDED entries of an ELF file (its direct dependencies). */
function needed(file) {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/**
 * Ships build/Release/libcollectives_cuda.so beside the addon when the build made it. Its CUDA
 * runtime is linked in statically, and the runtime opens the driver (libcuda.so.1) itself, so it
 * may need nothing but the C and C++ runtime from the system: checked here.
 */
function shipKernels() {
  const built = path.join(ROOT, 'build', 'Release', 'libcollectives_cuda.so');
  if (!fs.existsSync(built)) {
    console.log('prebuild: no build/Release/libcollectives_cuda.so (nvcc not found or COLLECTIVES_CUDA=0): the prebuild has no CUDA kernels');
    return undefined;
  }
  const dest = path.join(OUT, 'libcollectives_cuda.so');
  fs.copyFileSync(built, dest);
  fs.chmodSync(dest, 0o644);
  execFileSync('strip', ['--strip-unneeded', dest]);
  const foreign = needed(dest).filter((n) => !SYSTEM.test(n));
  if (foreign.length) fail(`libcollectives_cuda.so needs ${foreign.join(', ')}: it may need only the C/C++ runtime (and the driver, opened at run time)`);
  return { file: 'libcollectives_cuda.so', needs: ['libcuda.so.1 (the NVIDIA driver, opened at run time)'] };
}

function osRelease() {
  try {
    return /PRETTY_NAME="([^"]+)"/.exec(fs.readFileSync('/etc/os-release', 'utf8'))[1];
  } catch {
    return 'Linux';
  }
}

main().catch((err) => fail(err.message));
