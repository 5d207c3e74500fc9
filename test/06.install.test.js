'use strict';
// The install step (scripts/install.js) where it must build from source: the build tools
// (cmake-js, node-addon-api, node-api-headers) are optional peer dependencies, so a prebuilt
// install lacks them. Without them the step says which to install and stops; with them
// installed beside the package it runs cmake-js. Each case is a fake package folder in a
// temporary directory, with no prebuilds, so nothing is compiled here.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const INSTALL = path.join(__dirname, '..', 'scripts', 'install.js');
const TOOLS = ['cmake-js', 'node-addon-api', 'node-api-headers'];

/** app/node_modules/collectives with the install step and no prebuilds; app/node_modules holds `beside`. */
function fakeInstall(beside) {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-install-'));
  const pkg = path.join(app, 'node_modules', 'collectives');
  fs.mkdirSync(path.join(pkg, 'scripts'), { recursive: true });
  fs.copyFileSync(INSTALL, path.join(pkg, 'scripts', 'install.js'));
  fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'collectives', version: '0.0.0' }));
  for (const name of beside) {
    const dir = path.join(app, 'node_modules', name);
    fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'index.js' }));
    fs.writeFileSync(path.join(dir, 'index.js'), '');
    // A cmake-js that records how it was called instead of compiling.
    fs.writeFileSync(
      path.join(dir, 'bin', 'cmake-js'),
      `require('fs').writeFileSync(${JSON.stringify(path.join(app, 'cmake-js-ran'))}, JSON.stringify({ cwd: process.cwd(), argv: process.argv.slice(2) }));\n`,
    );
  }
  return { app, pkg };
}

function runInstall(pkg) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(COLLECTIVES_|npm_config_build_from_source$|NODE_PATH$)/.test(k)) delete env[k];
  return spawnSync(process.execPath, [path.join(pkg, 'scripts', 'install.js')], { cwd: pkg, env, encoding: 'utf8', timeout: 60000 });
}

describe('06 the install step without a prebuild', function () {
  const made = [];
  after(function () {
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says which build tools to install, and stops, when they are missing', function () {
    const { app, pkg } = fakeInstall([]);
    made.push(app);
    const r = runInstall(pkg);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /no prebuilt addon fits this machine/);
    assert.match(r.stdout, /collectives: a source build needs cmake-js, node-addon-api and node-api-headers, which are not installed/);
    assert.match(r.stdout, /^collectives: +npm install cmake-js node-addon-api node-api-headers$/m);
    assert.match(r.stdout, /COLLECTIVES_BUILD_FROM_SOURCE=1 npm rebuild collectives/);
    assert.doesNotMatch(r.stderr, /Cannot find module/);
    assert.equal(fs.existsSync(path.join(app, 'cmake-js-ran')), false);
  });

  it('names only the ones missing', function () {
    const { app, pkg } = fakeInstall(['cmake-js', 'node-api-headers']);
    made.push(app);
    const r = runInstall(pkg);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /a source build needs node-addon-api, which is not installed/);
    assert.match(r.stdout, /^collectives: +npm install node-addon-api$/m);
  });

  it('runs cmake-js in the package folder when the tools are installed beside it', function () {
    const { app, pkg } = fakeInstall(TOOLS);
    made.push(app);
    const r = runInstall(pkg);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const ran = JSON.parse(fs.readFileSync(path.join(app, 'cmake-js-ran'), 'utf8'));
    assert.equal(fs.realpathSync(ran.cwd), fs.realpathSync(pkg));
    assert.deepEqual(ran.argv, ['compile', '--out', 'build']);
  });
});
