#!/usr/bin/env node
'use strict';
// prebuildify's build step, done by cmake-js instead of node-gyp. scripts/prebuild.js hands this
// file to prebuildify as its `nodeGyp`; prebuildify calls it as node-gyp would be called
// (`rebuild --target=… --devdir=… --arch=… --release`). The addon is Node-API, so the target
// version does not matter, and cmake-js takes Node-API's headers from the node-api-headers
// package: nothing is downloaded, unlike node-gyp, which fetches Node's headers for --target.
// prebuildify then strips build/Release/collectives.node and moves it into prebuilds/.

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuild-backend: expected "rebuild", got ${JSON.stringify(args)}`);
  process.exit(2);
}
const debug = args.includes('--debug');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const root = path.join(__dirname, '..');
const r = spawnSync(process.execPath, [cmakeJs, 'rebuild', '--out', 'build', ...(debug ? ['--debug'] : [])], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
