'use strict';
// The layering of lib/ (DESIGN.md): the core never reaches up into the launcher, the
// benchmarks, the ops or the training layer, and the training layer stands on the public
// entries only (`collectives`, `collectives/ops`), so that everything it needs is public.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { builtinModules } = require('node:module');

const LIB = path.join(__dirname, '..', 'lib');

function sources(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.m?ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module a file names: static imports and exports, import(), require(). */
function imports(file) {
  const text = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '');
  const found = [];
  const patterns = [/\b(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1]);
  return found;
}

/** The lib/-relative path a relative specifier resolves to (without extension), or null. */
function target(file, spec) {
  if (!spec.startsWith('.')) return null;
  const abs = path.resolve(path.dirname(file), spec.replace(/\.(m?js)$/, ''));
  let rel = path.relative(LIB, abs).split(path.sep).join('/');
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) rel += '/index';
  return rel;
}

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

describe('03 layers', function () {
  const files = sources(LIB);

  it('finds the sources and their imports (the scan itself works)', function () {
    const core = files.filter((f) => f.includes(`${path.sep}core${path.sep}`));
    assert.ok(core.length >= 10, `only ${core.length} files under lib/core`);
    const comm = imports(path.join(LIB, 'core', 'communicator.ts'));
    assert.ok(comm.includes('./shapes'), `communicator.ts imports: ${comm.join(', ')}`);
  });

  it('lib/core imports nothing from launch/, bench/, ops/ or training/', function () {
    const bad = [];
    for (const f of files.filter((x) => x.includes(`${path.sep}core${path.sep}`))) {
      for (const spec of imports(f)) {
        const t = target(f, spec);
        if (t !== null && /^(launch|bench|ops|training)(\/|$)/.test(t)) bad.push(`${path.relative(LIB, f)} imports ${spec}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('lib/training imports only the public entries (../index, ../ops), its own files and node builtins', function () {
    const bad = [];
    for (const f of files.filter((x) => x.includes(`${path.sep}training${path.sep}`))) {
      for (const spec of imports(f)) {
        if (BUILTINS.has(spec)) continue;
        // The TF.js adapter's optional peer dependency.
        if (spec === '@tensorflow/tfjs-core' && f.includes(`${path.sep}tfjs${path.sep}`)) continue;
        const t = target(f, spec);
        if (t === 'index' || t === 'ops/index' || (t !== null && t.startsWith('training/'))) continue;
        bad.push(`${path.relative(LIB, f)} imports ${spec}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('lib/ops stands on the core only', function () {
    const bad = [];
    for (const f of files.filter((x) => x.includes(`${path.sep}ops${path.sep}`))) {
      for (const spec of imports(f)) {
        const t = target(f, spec);
        if (t !== null && !/^(core|ops)\//.test(t)) bad.push(`${path.relative(LIB, f)} imports ${spec}`);
      }
    }
    assert.deepEqual(bad, []);
  });
});
