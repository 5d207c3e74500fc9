'use strict';
// Runs one of the device workers (test/workers/*-device.js: a training run on DeviceBuffers
// beside the same run on host arrays, one rank) and returns its RESULT line, parsed, with its
// stderr (where the stand-ins report their live allocations). `env`: the stand-ins' variables
// (test/helpers/fake-gpu.js), or {} on a real GPU.

const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const WORKERS = path.join(__dirname, '..', 'workers');

function runDeviceWorker(file, dir, env) {
  const r = spawnSync(process.execPath, [path.join(WORKERS, file), dir], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 110000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, r.stdout + r.stderr);
  return { out: JSON.parse(line.slice(7)), stderr: r.stderr };
}

module.exports = { runDeviceWorker };
