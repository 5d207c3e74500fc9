'use strict';
// Runs one of the device workers (test/workers/*-device.js: a training run on DeviceBuffers
// beside the same run on host arrays, one rank) and returns its RESULT line, parsed, with its
// stderr (where the stand-ins report their live allocations). `env`: the stand-ins' variables
// (test/helpers/fake-gpu.js), or {} on a real GPU.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { fakeGpuEnv } = require('./fake-gpu');

const WORKERS = path.join(__dirname, '..', 'workers');

function runDeviceWorker(file, dir, env) {
  const r = spawnSync(process.execPath, [path.join(WORKERS, file), dir], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 110000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, r.stdout + r.stderr);
  return { out: JSON.parse(line.slice(7)), stderr: r.stderr };
}

/**
 * The worker on the host-memory stand-ins of CUDA, NCCL and the kernels, in a temporary
 * directory removed after; skips the mocha test `test` where the stand-ins cannot be built.
 */
function runOnStandIns(test, file) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-device-worker-'));
  try {
    const env = fakeGpuEnv(path.join(tmp, 'fakes'));
    if (env === null) test.skip();
    return runDeviceWorker(file, path.join(tmp, 'ckpt'), env);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

module.exports = { runDeviceWorker, runOnStandIns };
