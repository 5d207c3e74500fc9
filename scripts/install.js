#!/usr/bin/env node
'use strict';
// The package's install step (package.json "install"). It uses the prebuilt addon in
// prebuilds/<platform>-<arch>/ when one loads on this machine, builds from source with cmake-js
// only when none does, and says which it did and why.
//
// A source build is forced by COLLECTIVES_BUILD_FROM_SOURCE=1, or by npm's --build-from-source
// (npm_config_build_from_source). A development checkout (a .git beside package.json) always
// builds from source, so that edits to native/ are compiled.
//
// npm hides what install steps print unless asked: `npm install --foreground-scripts` shows it,
// and `node -p "require('collectives').versions().addon"` tells later which file is loaded.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const PLATFORM = `${process.platform}-${process.arch}`;

function say(line) {
  console.log(`collectives: ${line}`);
}

function truthy(v) {
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/** Why a source build was asked for, or undefined. */
function forcedBy() {
  if (truthy(process.env.COLLECTIVES_BUILD_FROM_SOURCE)) return 'COLLECTIVES_BUILD_FROM_SOURCE is set';
  // `npm install --build-from-source` sets npm_config_build_from_source=true; prebuild-install's
  // form --build-from-source=<package names> is honoured for this package's name.
  const flag = process.env.npm_config_build_from_source;
  if (flag === 'true' || (flag && flag.split(',').map((s) => s.trim()).includes('collectives'))) {
    return 'npm was given --build-from-source';
  }
  if (fs.existsSync(path.join(ROOT, '.git'))) return 'this is a development checkout';
  return undefined;
}

/**
 * Loads the prebuilt addon in a child process, through the package's own loader with
 * COLLECTIVES_PREBUILDS_ONLY=1, so that the check is the one every later require makes.
 * Returns { ok, file } or { ok: false, why } with the loader's explanation.
 */
function tryPrebuild() {
  const loader = path.join(ROOT, 'dist', 'core', 'loader.js');
  if (!fs.existsSync(path.join(ROOT, 'prebuilds', PLATFORM))) {
    const shipped = fs.existsSync(path.join(ROOT, 'prebuilds')) ? fs.readdirSync(path.join(ROOT, 'prebuilds')) : [];
    return { ok: false, why: shipped.length ? `no prebuilt addon for ${PLATFORM} (this package has ${shipped.join(', ')})` : 'this package has no prebuilt addons' };
  }
  if (!fs.existsSync(loader)) return { ok: false, why: `${loader} is missing` };
  const code = `const l = require(${JSON.stringify(loader)});
    try { l.loadAddon(); process.stdout.write(l.addonPath()); } catch (e) { process.stderr.write(e.message); process.exit(1); }`;
  const env = { ...process.env, COLLECTIVES_PREBUILDS_ONLY: '1' };
  delete env.COLLECTIVES_ADDON;
  const r = spawnSync(process.execPath, ['-e', code], { env, encoding: 'utf8', timeout: 60000 });
  if (r.status === 0) return { ok: true, file: r.stdout.trim() };
  return { ok: false, why: (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim() };
}

// What a source build needs from npm. They are optional peer dependencies (and the repository's
// devDependencies), so that an install that uses the prebuild does not download them.
const BUILD_PACKAGES = ['cmake-js', 'node-addon-api', 'node-api-headers'];

/** Whether `name` resolves from the package folder (installed beside it, or in a folder above). */
function installed(name) {
  try {
    require.resolve(`${name}/package.json`, { paths: [ROOT] });
    return true;
  } catch {
    return false;
  }
}

function buildFromSource(reason) {
  say(`building the addon from source (${reason}): cmake-js, CMakeLists.txt, the system's Gloo.`);
  say('a source build needs libgloo-dev, cmake and a C++17 compiler (apt-get install libgloo-dev cmake g++).');
  const missing = BUILD_PACKAGES.filter((name) => !installed(name));
  if (missing.length > 0) {
    const names = missing.length === 1 ? missing[0] : `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]}`;
    say(`a source build needs ${names}, which ${missing.length === 1 ? 'is' : 'are'} not installed (a prebuilt install does not need them). Add them to the project:`);
    say(`  npm install ${missing.join(' ')}`);
    say('then run: COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives');
    process.exit(1);
  }
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [ROOT] });
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    say(`the source build failed (cmake-js exited with ${r.status ?? r.signal}).`);
    say('install the build tools (apt-get install libgloo-dev cmake g++) and run: COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives');
    process.exit(r.status || 1);
  }
  say(`built ${path.join('build', 'Release', 'collectives.node')} from source; the loader uses it before any prebuild.`);
}

function main() {
  const forced = forcedBy();
  if (forced) return buildFromSource(forced);
  const r = tryPrebuild();
  if (r.ok) {
    // An earlier forced source build would win over the prebuild at load time: remove it.
    const build = path.join(ROOT, 'build');
    if (fs.existsSync(build)) {
      fs.rmSync(build, { recursive: true, force: true });
      say('removed the earlier source build in build/ so that the prebuilt addon is used.');
    }
    say(`using the prebuilt addon ${path.relative(ROOT, r.file)} (Gloo and the libraries it needs ship beside it); nothing was compiled.`);
    return;
  }
  say('no prebuilt addon fits this machine:');
  for (const line of r.why.split('\n')) console.log(`  ${line}`);
  buildFromSource('no prebuilt addon fits');
}

main();
