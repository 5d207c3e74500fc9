'use strict';
// Builds the host-memory stand-ins of the CUDA runtime, NCCL and the CUDA kernels
// (test/fixtures/fake-gpu) for the suites that run device paths on a machine without a GPU.

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');
const FAKES = path.join(ROOT, 'test', 'fixtures', 'fake-gpu');

/** Compiles one C stand-in into `dir/name`; null where no C compiler is found. */
function compileFake(dir, name, source, defines = []) {
  const out = path.join(dir, name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const r = spawnSync('cc', ['-shared', '-fPIC', '-o', out, ...defines, path.join(FAKES, source)], { encoding: 'utf8' });
  return r.status === 0 ? out : null;
}

/** The stand-in for libcollectives_cuda: fake_kernels.cc over the host code; null without c++. */
function compileFakeKernels(dir, name, defines = []) {
  const out = path.join(dir, name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const native = path.join(ROOT, 'native');
  const r = spawnSync('c++', ['-shared', '-fPIC', '-std=c++17', '-ffp-contract=off', '-fvisibility=hidden', '-O1', `-I${native}`, '-o', out, ...defines,
    path.join(FAKES, 'fake_kernels.cc'), path.join(native, 'quant', 'codec.cc'), path.join(native, 'ops', 'elementwise.cc')], { encoding: 'utf8' });
  return r.status === 0 ? out : null;
}

/** The environment that points the addon at the stand-ins, with one device. */
function fakeGpuEnv(dir) {
  const cudart = compileFake(dir, 'libcudart.so.12', 'fake_cudart.c');
  const nccl = compileFake(dir, 'libnccl.so.2', 'fake_nccl.c', ['-DVERSION=22105']);
  const kernels = compileFakeKernels(dir, 'libcollectives_cuda.so');
  if (!cudart || !nccl || !kernels) return null;
  return { COLLECTIVES_CUDA_LIBRARY: cudart, COLLECTIVES_NCCL_LIBRARY: nccl, COLLECTIVES_CUDA_KERNELS: kernels, FAKE_CUDA_DEVICES: '1', FAKE_CUDA_REPORT: '1' };
}

module.exports = { compileFake, compileFakeKernels, fakeGpuEnv };
