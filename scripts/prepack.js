#!/usr/bin/env node
'use strict';
// Runs before `npm pack` and `npm publish` (package.json "prepack"). The tarball takes prebuilds/
// as it finds it, and prebuilds/ is not committed: a tarball packed from a fresh clone has no
// prebuilt addon, and every install of it compiles the addon (which needs Gloo, CMake and a
// compiler). npm says nothing about that, so this does, on stderr. Publishing such a tarball is
// refused unless COLLECTIVES_PUBLISH_WITHOUT_PREBUILD=1 says it is meant.

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const PLATFORM = 'linux-x64';
const dir = path.join(ROOT, 'prebuilds', PLATFORM);

function manifestAddon() {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    return fs.existsSync(path.join(dir, m.addon)) ? m.addon : undefined;
  } catch {
    return undefined;
  }
}

const addon = manifestAddon();
if (addon) {
  process.stderr.write(`collectives: packing with the prebuilt addon prebuilds/${PLATFORM}/${addon}\n`);
  process.exit(0);
}
const bar = '*'.repeat(78);
process.stderr.write(
  [
    bar,
    `collectives: WARNING: this tarball has NO prebuilt addon (prebuilds/${PLATFORM}/ is missing or incomplete).`,
    'Every `npm install` of it will build the addon from source, which needs libgloo-dev, cmake',
    'and a C++17 compiler on the installing machine. To ship the prebuild, run first:',
    '    npm run build:prebuild',
    bar,
    '',
  ].join('\n'),
);
if (process.env.npm_command === 'publish' && process.env.COLLECTIVES_PUBLISH_WITHOUT_PREBUILD !== '1') {
  process.stderr.write('collectives: refusing to publish without the prebuild (COLLECTIVES_PUBLISH_WITHOUT_PREBUILD=1 to publish anyway)\n');
  process.exit(1);
}
