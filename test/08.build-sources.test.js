'use strict';
// The two builds of the addon, CMakeLists.txt (cmake-js) and binding.gyp (node-gyp), compile
// the same sources: a file added to one list and not the other builds with one tool and fails
// to link (or silently lacks a feature) with the other. Every C++ and CUDA source under native/
// is built by one of them, so none is left behind unnoticed.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

// Sources only CMake builds, and why. binding.gyp builds the CPU addon alone; CMake also builds,
// when nvcc is found, the CUDA kernels library the addon opens at run time and the self-test
// that checks those kernels against the host code. Both need the CUDA toolkit.
const CMAKE_ONLY = {
  'native/gpu/kernels/codec_kernels.cu': 'libcollectives_cuda (nvcc)',
  'native/gpu/kernels/elementwise_kernels.cu': 'libcollectives_cuda (nvcc)',
  'native/gpu/kernels/selftest.cc': 'collectives_cuda_selftest, linked with libcollectives_cuda and the CUDA runtime',
};

/** CMake's text without its comments. */
function cmakeText() {
  return fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8').replace(/#.*$/gm, '');
}

/** The addon's sources in CMakeLists.txt: the COLLECTIVES_SOURCES list. */
function cmakeAddonSources() {
  const m = /set\(\s*COLLECTIVES_SOURCES\s([^)]*)\)/.exec(cmakeText());
  assert.ok(m, 'CMakeLists.txt: no set(COLLECTIVES_SOURCES ...)');
  return m[1].split(/\s+/).filter(Boolean);
}

/** Every native/ source CMakeLists.txt names, in any target. */
function cmakeNativeSources() {
  return [...cmakeText().matchAll(/\bnative\/[\w/.-]+\.(?:cc|cu)\b/g)].map((m) => m[0]);
}

/** The sources of binding.gyp's one target (the file is JSON apart from # comments). */
function gypSources() {
  const text = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const targets = JSON.parse(text).targets.filter((t) => t.target_name === 'collectives');
  assert.equal(targets.length, 1, 'binding.gyp: expected one target named collectives');
  return targets[0].sources;
}

/** The .cc and .cu files under native/, as paths from the package root. */
function nativeSources(dir = 'native') {
  const out = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...nativeSources(rel));
    else if (/\.(cc|cu)$/.test(entry.name)) out.push(rel);
  }
  return out;
}

const sorted = (list) => [...list].sort();
const duplicates = (list) => list.filter((x, i) => list.indexOf(x) !== i);

describe('08 build sources', function () {
  it('CMakeLists.txt and binding.gyp list the same addon sources, each once', function () {
    const cmake = cmakeAddonSources();
    const gyp = gypSources();
    assert.deepEqual(duplicates(cmake), [], 'listed twice in CMakeLists.txt');
    assert.deepEqual(duplicates(gyp), [], 'listed twice in binding.gyp');
    assert.deepEqual(sorted(gyp), sorted(cmake));
  });

  it('lists only files that exist', function () {
    for (const file of new Set([...cmakeNativeSources(), ...gypSources()])) {
      assert.ok(fs.existsSync(path.join(ROOT, file)), `${file} is listed but does not exist`);
    }
  });

  it('builds every .cc and .cu file under native/, the CUDA-only ones with CMake alone', function () {
    const addon = new Set([...cmakeAddonSources(), ...gypSources()]);
    const cmake = new Set(cmakeNativeSources());
    for (const file of nativeSources()) {
      if (file in CMAKE_ONLY) {
        assert.ok(cmake.has(file), `${file} (${CMAKE_ONLY[file]}) is not in CMakeLists.txt`);
        assert.ok(!addon.has(file), `${file} needs the CUDA toolkit, which the addon itself does not use`);
      } else {
        assert.ok(addon.has(file), `${file} is built by neither CMakeLists.txt's COLLECTIVES_SOURCES nor binding.gyp`);
      }
    }
  });
});
