'use strict';
// What `npm pack` makes of a clone: a source build of the tarball must need only the tarball's
// files, and a tarball without the prebuilt addon must be announced when it is packed.
// (scripts/check-source-install.sh does the whole install; this is the fast part of it.)

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

/** Whether npm would pack `file` (a path relative to the package), by package.json "files". */
function shipped(file) {
  return pkg.files.some((f) => (f.endsWith('/') ? file.startsWith(f) : file === f || file.startsWith(f + '/')));
}

describe('08 package', function () {
  it('CMakeLists.txt and binding.gyp use files outside the package only where they exist', function () {
    const cmake = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
    const gyp = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8');
    const wrong = [];
    for (const [name, text] of [['CMakeLists.txt', cmake], ['binding.gyp', gyp]]) {
      const files = new Set([...text.matchAll(/\b([A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)+\.(?:cc|cpp|cu|c|h))\b/g)].map((m) => m[1]));
      for (const f of files) {
        if (shipped(f)) continue;
        const guarded = name === 'CMakeLists.txt' && text.includes(`if(EXISTS \${CMAKE_SOURCE_DIR}/${f})`);
        if (!guarded) wrong.push(`${name} needs ${f}, which the tarball lacks`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  describe('prepack', function () {
    let root;
    beforeEach(function () {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-prepack-'));
      fs.mkdirSync(path.join(root, 'scripts'));
      fs.copyFileSync(path.join(ROOT, 'scripts', 'prepack.js'), path.join(root, 'scripts', 'prepack.js'));
    });
    afterEach(function () {
      fs.rmSync(root, { recursive: true, force: true });
    });
    const prepack = (env = {}) =>
      spawnSync(process.execPath, [path.join(root, 'scripts', 'prepack.js')], { env: { ...process.env, npm_command: 'pack', ...env }, encoding: 'utf8' });

    it('is the package\'s prepack script', function () {
      assert.equal(pkg.scripts.prepack, 'node scripts/prepack.js');
    });

    it('warns on stderr when the tarball will have no prebuilt addon, and refuses to publish it', function () {
      let r = prepack();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /WARNING: this tarball has NO prebuilt addon/);
      assert.match(r.stderr, /npm run build:prebuild/);

      r = prepack({ npm_command: 'publish', COLLECTIVES_PUBLISH_WITHOUT_PREBUILD: undefined });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /refusing to publish without the prebuild/);
      r = prepack({ npm_command: 'publish', COLLECTIVES_PUBLISH_WITHOUT_PREBUILD: '1' });
      assert.equal(r.status, 0, r.stderr);
    });

    it('says nothing alarming when the prebuild is there', function () {
      const dir = path.join(root, 'prebuilds', 'linux-x64');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'collectives.glibc.node'), 'x');
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ addon: 'collectives.glibc.node' }));
      const r = prepack({ npm_command: 'publish' });
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /WARNING/);
      assert.match(r.stderr, /packing with the prebuilt addon prebuilds\/linux-x64\/collectives\.glibc\.node/);
    });
  });
});
