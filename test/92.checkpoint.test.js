'use strict';
// Checkpoints: safetensors read from bytes built here from the format's description (not by
// the writer) and the writer's output decoded here by hand; corrupt files refused naming the
// file; save / load round trips bit for bit, training resumed bit for bit; mismatched models
// refused naming the tensor; and saves that fail or are SIGKILLed part way leave the previous
// checkpoint loadable.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const training = require('../dist/training');
const { ParameterSet, AdamW, SGD, readSafetensors, writeSafetensors, saveCheckpoint, loadCheckpoint, saveLatestCheckpoint, latestCheckpoint, listCheckpoints } = training;

const SPECS = [
  { name: 'fc.weight', shape: [8, 5] },
  { name: 'fc.bias', shape: [8] },
  { name: 'out.weight', shape: [3, 8] },
];

let tmp;
beforeEach(function () {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-ckpt-'));
});
afterEach(function () {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function filled(specs = SPECS, seed = 1, padMultiple = 4) {
  const ps = new ParameterSet(specs, { padMultiple });
  for (let i = 0; i < ps.size; i++) ps.data[i] = Math.fround(Math.sin(seed * 1000 + i));
  return ps;
}

function train(ps, opt, from, to) {
  for (let t = from; t <= to; t++) {
    for (let i = 0; i < ps.size; i++) ps.grad[i] = Math.fround(Math.cos(t * 31 + i));
    opt.step();
  }
}

function sameBits(a, b, what) {
  assert.deepEqual(new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length), what);
}

/** A safetensors file from the format's description: u64 LE N, N bytes of JSON, the data. */
function buildFile(header, data, pad = 0) {
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad), 'utf8');
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([n, json, data]);
}

function invalid(file, re) {
  return (e) => {
    assert.equal(e.code, 'CHECKPOINT_INVALID', e.message);
    assert.ok(e.message.startsWith(file), `${e.message} names ${file}`);
    assert.match(e.message, re);
    return true;
  };
}

describe('92 training: checkpoints', function () {
  describe('safetensors', function () {
    it('reads a file built byte by byte from the format, every dtype', function () {
      const data = Buffer.alloc(64);
      let o = 0;
      const put = (f) => {
        const begin = o;
        o = f(o);
        return [begin, o];
      };
      const offsets = {
        f32: put((p) => (data.writeFloatLE(1.5, p), data.writeFloatLE(-2.25, p + 4), p + 8)),
        f16: put((p) => (data.writeUInt16LE(0x3c00, p), data.writeUInt16LE(0xc000, p + 2), p + 4)), // 1.0, -2.0
        bf16: put((p) => (data.writeUInt16LE(0x3f80, p), p + 2)), // 1.0
        i32: put((p) => (data.writeInt32LE(-7, p), data.writeInt32LE(2147483647, p + 4), p + 8)),
        i64: put((p) => (data.writeBigInt64LE(-(2n ** 40n), p), p + 8)),
        u8: put((p) => (data.writeUInt8(200, p), data.writeUInt8(7, p + 1), data.writeUInt8(0, p + 2), p + 3)),
        i8: put((p) => (data.writeInt8(-100, p), p + 1)),
        f64: put((p) => (data.writeDoubleLE(Math.PI, p), p + 8)),
      };
      const header = {
        __metadata__: { format: 'pt', note: 'built by hand' },
        a: { dtype: 'F32', shape: [1, 2], data_offsets: offsets.f32 },
        h: { dtype: 'F16', shape: [2], data_offsets: offsets.f16 },
        b: { dtype: 'BF16', shape: [], data_offsets: offsets.bf16 },
        i: { dtype: 'I32', shape: [2], data_offsets: offsets.i32 },
        l: { dtype: 'I64', shape: [1], data_offsets: offsets.i64 },
        u: { dtype: 'U8', shape: [3, 1], data_offsets: offsets.u8 },
        s: { dtype: 'I8', shape: [1], data_offsets: offsets.i8 },
        d: { dtype: 'F64', shape: [1], data_offsets: offsets.f64 },
        empty: { dtype: 'F32', shape: [0, 3], data_offsets: [o, o] },
      };
      const file = path.join(tmp, 'hand.safetensors');
      // Padded with spaces (the header may be), which also puts the data at an odd offset.
      fs.writeFileSync(file, buildFile(header, data.subarray(0, o), 3));
      const { tensors, metadata } = readSafetensors(file);
      assert.deepEqual(metadata, { format: 'pt', note: 'built by hand' });
      const get = (n) => tensors.get(n);
      assert.deepEqual([get('a').dtype, get('a').shape, [...get('a').data]], ['F32', [1, 2], [1.5, -2.25]]);
      assert.ok(get('a').data instanceof Float32Array);
      assert.deepEqual([...get('h').data], [0x3c00, 0xc000]);
      assert.deepEqual([get('b').shape, [...get('b').data]], [[], [0x3f80]]);
      assert.deepEqual([...get('i').data], [-7, 2147483647]);
      assert.deepEqual([...get('l').data], [-(2n ** 40n)]);
      assert.deepEqual([get('u').shape, [...get('u').data]], [[3, 1], [200, 7, 0]]);
      assert.deepEqual([...get('s').data], [-100]);
      assert.deepEqual([...get('d').data], [Math.PI]);
      assert.equal(get('empty').data.length, 0);
    });

    it('writes what the format says: LE length, JSON padded to 8 bytes, contiguous LE data', function () {
      const file = path.join(tmp, 'w.safetensors');
      const a = new Float32Array([1, -2, 3.5, 0.1, 5, 6]);
      const b = new Int32Array([-1, 9]);
      writeSafetensors(file, [['layer.a', { shape: [2, 3], data: a }], ['b', { shape: [2], data: b }]], { format: 'pt' });
      const bytes = fs.readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      assert.equal((8 + n) % 8, 0, 'data starts 8-aligned');
      const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
      assert.deepEqual(header, {
        __metadata__: { format: 'pt' },
        'layer.a': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
        b: { dtype: 'I32', shape: [2], data_offsets: [24, 32] },
      });
      assert.equal(bytes.length, 8 + n + 32);
      const d = bytes.subarray(8 + n);
      assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => d.readFloatLE(4 * i)), [...a]);
      assert.deepEqual([d.readInt32LE(24), d.readInt32LE(28)], [-1, 9]);
    });

    it('refuses broken files with CHECKPOINT_INVALID naming the file and the fault', function () {
      const good = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
      const data = Buffer.alloc(12);
      const cases = [
        ['short', Buffer.alloc(5), /too short for the 8-byte header length/],
        ['length', (() => { const b = buildFile(good, data); b.writeBigUInt64LE(10n ** 6n, 0); return b; })(), /header length 1000000 runs past the end of the file/],
        ['json', (() => { const b = buildFile(good, data); b[8 + 3] = 0x7b; return b; })(), /not valid JSON/],
        ['array', buildFile([], Buffer.alloc(0)), /not a JSON object/],
        ['truncated', buildFile(good, data).subarray(0, 8 + Buffer.byteLength(JSON.stringify(good)) + 10), /tensor "y" ends at byte 12 of the data but the file holds 10: truncated/],
        ['beyond', buildFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data), /"x" ends at byte 16 .* holds 12/],
        ['overlap', buildFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data), /"y" .* overlaps tensor "x"/],
        ['hole', buildFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, y: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, data), /4 bytes of data before tensor "y" belong to no tensor/],
        ['trailing', buildFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data), /4 bytes after the last tensor/],
        ['size', buildFile({ x: { dtype: 'F16', shape: [2], data_offsets: [0, 12] } }, data), /"x": data_offsets \[0, 12\] hold 12 bytes, but F16 \[2\] takes 4/],
        ['dtype', buildFile({ x: { dtype: 'F31', shape: [3], data_offsets: [0, 12] } }, data), /dtype "F31"/],
        ['shape', buildFile({ x: { dtype: 'F32', shape: [-3], data_offsets: [0, 12] } }, data), /shape \[-3\]/],
        ['offsets', buildFile({ x: { dtype: 'F32', shape: [3], data_offsets: [12, 0] } }, data), /data_offsets \[12,0\]/],
        ['metadata', buildFile({ __metadata__: { n: 1 }, ...good }, data), /__metadata__\.n is not a string/],
      ];
      for (const [name, bytes, re] of cases) {
        const file = path.join(tmp, `${name}.safetensors`);
        fs.writeFileSync(file, bytes);
        assert.throws(() => readSafetensors(file), invalid(file, re), name);
      }
      const missing = path.join(tmp, 'missing.safetensors');
      assert.throws(() => readSafetensors(missing), invalid(missing, /no such file/));
    });
  });

  describe('save and load', function () {
    it('round-trips parameters and AdamW state bit for bit, and training resumes bit for bit', function () {
      const a = filled();
      const oa = new AdamW(a, { lr: 0.01, weightDecay: 0.1 });
      train(a, oa, 1, 5);
      const dir = path.join(tmp, 'ckpt');
      saveCheckpoint(dir, { params: a, optimizer: oa, step: 5, worldSize: 2, meta: { epoch: 1, note: 'x' } });
      assert.deepEqual(fs.readdirSync(dir).sort(), ['checkpoint.json', 'model.safetensors', 'optimizer.safetensors']);
      assert.deepEqual(fs.readdirSync(tmp), ['ckpt'], 'no temporary left');

      // model.safetensors holds each tensor under its name, in its shape, F32 (what torch loads).
      const model = readSafetensors(path.join(dir, 'model.safetensors'));
      assert.deepEqual([...model.tensors.keys()], SPECS.map((s) => s.name));
      for (const t of a.tensors) {
        assert.deepEqual(model.tensors.get(t.name).shape, t.shape);
        sameBits(model.tensors.get(t.name).data, a.view(t.name), t.name);
      }
      assert.equal(model.metadata.format, 'pt');
      const opt = readSafetensors(path.join(dir, 'optimizer.safetensors'));
      assert.deepEqual([...opt.tensors.keys()], ['exp_avg/fc.weight', 'exp_avg/fc.bias', 'exp_avg/out.weight', 'exp_avg_sq/fc.weight', 'exp_avg_sq/fc.bias', 'exp_avg_sq/out.weight']);
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8'));
      assert.equal(index.format, 1);
      assert.equal(index.step, 5);
      assert.equal(index.worldSize, 2);
      assert.deepEqual(index.tensors, SPECS);
      assert.deepEqual(index.optimizer.options, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, lr: 0.01 });

      const b = filled(SPECS, 2);
      const ob = new AdamW(b, { lr: 0.01, weightDecay: 0.1 });
      const loaded = loadCheckpoint(dir, { params: b, optimizer: ob });
      assert.equal(loaded.step, 5);
      assert.equal(loaded.worldSize, 2);
      assert.deepEqual(loaded.meta, { epoch: 1, note: 'x' });
      sameBits(b.data, a.data, 'parameters');
      assert.equal(ob.stepCount, 5);
      train(a, oa, 6, 10);
      train(b, ob, 6, 10);
      sameBits(b.data, a.data, 'parameters after 5 more steps');
    });

    it('keeps a ranged (ZeRO-1) optimizer state flat and refuses it for another range', function () {
      const a = filled();
      const range = a.shardRange(1, 2);
      const oa = new SGD(a, { lr: 0.1, momentum: 0.9 }, range);
      train(a, oa, 1, 3);
      const dir = path.join(tmp, 'rank1');
      saveCheckpoint(dir, { params: a, optimizer: oa, step: 3 });
      const opt = readSafetensors(path.join(dir, 'optimizer.safetensors'));
      assert.deepEqual([...opt.tensors.keys()], ['momentum_buffer']);
      assert.deepEqual(opt.tensors.get('momentum_buffer').shape, [range.end - range.begin]);
      const b = filled(SPECS, 2);
      const ob = new SGD(b, { lr: 0.1, momentum: 0.9 }, range);
      loadCheckpoint(dir, { params: b, optimizer: ob });
      sameBits(ob.state().tensors.momentum_buffer, oa.state().tensors.momentum_buffer, 'state');
      const other = new SGD(b, { lr: 0.1, momentum: 0.9 }, b.shardRange(0, 2));
      assert.throws(() => loadCheckpoint(dir, { params: b, optimizer: other }), invalid(dir, /covers elements \[36, 72\), the optimizer \[0, 36\)/));
      assert.throws(() => loadCheckpoint(dir, { params: b, optimizer: new AdamW(b) }), invalid(dir, /SGD's, the optimizer given is AdamW/));
    });

    it('refuses a model whose tensor names or shapes differ, naming the tensor, and writes nothing', function () {
      const a = filled();
      const dir = path.join(tmp, 'ckpt');
      saveCheckpoint(dir, { params: a, step: 1 });
      const file = path.join(dir, 'model.safetensors');
      const shape = filled([SPECS[0], { name: 'fc.bias', shape: [2, 4] }, SPECS[2]], 3);
      const before = shape.data.slice();
      assert.throws(() => loadCheckpoint(dir, { params: shape }), invalid(file, /tensor "fc\.bias" has shape \[8\] in the checkpoint, \[2,4\] in the model/));
      sameBits(shape.data, before, 'untouched');
      assert.throws(() => loadCheckpoint(dir, { params: filled([SPECS[0], SPECS[1], { name: 'head.weight', shape: [3, 8] }]) }), invalid(file, /tensor "head\.weight" of the model is not in the checkpoint/));
      assert.throws(() => loadCheckpoint(dir, { params: filled(SPECS.slice(0, 2)) }), invalid(file, /tensor "out\.weight" of the checkpoint is not in the model/));
      assert.throws(() => loadCheckpoint(dir, { params: a, optimizer: new AdamW(a) }), invalid(dir, /holds no optimizer state/));
      const nowhere = path.join(tmp, 'nowhere');
      assert.throws(() => loadCheckpoint(nowhere, { params: a }), invalid(nowhere, /checkpoint\.json: no such file/));
      fs.truncateSync(file, 100);
      assert.throws(() => loadCheckpoint(dir, { params: a }), invalid(file, /truncated/));
    });

    it('validates its arguments', function () {
      const a = filled();
      const bad = (re) => (e) => e.code === 'INVALID_ARGUMENT' && re.test(e.message);
      assert.throws(() => saveCheckpoint(path.join(tmp, 'x'), { params: a, step: -1 }), bad(/^contents\.step: /));
      assert.throws(() => saveCheckpoint(path.join(tmp, 'x'), { params: {}, step: 0 }), bad(/^contents\.params: /));
      assert.throws(() => saveCheckpoint(path.join(tmp, 'x'), { params: a, step: 0, extra: 1 }), bad(/^contents\.extra: /));
      assert.throws(() => saveCheckpoint(path.join(tmp, 'x'), { params: a, step: 0, optimizer: new AdamW(filled(SPECS.slice(1))) }), bad(/^contents\.optimizer: /));
      assert.throws(() => saveLatestCheckpoint(tmp, { params: a, step: 0 }, { keep: 0 }), bad(/^options\.keep: /));
      assert.deepEqual(fs.readdirSync(tmp), []);
    });
  });

  describe('a root with latest', function () {
    it('points latest at the newest save and keeps `keep` checkpoints', function () {
      const a = filled();
      const o = new AdamW(a);
      assert.equal(latestCheckpoint(tmp), null);
      for (let step = 1; step <= 4; step++) {
        train(a, o, step, step);
        saveLatestCheckpoint(tmp, { params: a, optimizer: o, step }, { keep: 2 });
      }
      assert.deepEqual(fs.readdirSync(tmp).sort(), ['latest', 'step-00000003', 'step-00000004']);
      assert.equal(latestCheckpoint(tmp), path.join(tmp, 'step-00000004'));
      // The same step again does not replace the one latest names.
      saveLatestCheckpoint(tmp, { params: a, step: 4 });
      assert.equal(latestCheckpoint(tmp), path.join(tmp, 'step-00000004.1'));
      assert.deepEqual(listCheckpoints(tmp).map((d) => path.basename(d)), ['step-00000003', 'step-00000004', 'step-00000004.1']);
      const b = filled(SPECS, 9);
      assert.equal(loadCheckpoint(tmp, { params: b }).dir, path.join(tmp, 'step-00000004.1'));
      sameBits(b.data, a.data, 'loaded through latest');
    });

    it('leaves the previous checkpoint loadable when a save fails at any file operation', function () {
      const a = filled();
      const o = new AdamW(a);
      train(a, o, 1, 2);
      const stepTwo = a.data.slice();
      const twoState = o.state();
      const ops = ['openSync', 'writeSync', 'fsyncSync', 'renameSync', 'closeSync', 'mkdirSync'];
      const original = Object.fromEntries(ops.map((k) => [k, fs[k]]));
      let failures = 0;
      for (let k = 1; ; k++) {
        const root = path.join(tmp, `k${k}`);
        a.data.set(stepTwo);
        o.loadState(twoState);
        saveLatestCheckpoint(root, { params: a, optimizer: o, step: 2 });
        train(a, o, 3, 3);
        let calls = 0;
        for (const op of ops) {
          fs[op] = function (...args) {
            if (++calls === k) throw Object.assign(new Error(`injected failure in ${op}`), { code: 'EIO' });
            return original[op].apply(this, args);
          };
        }
        let threw = false;
        try {
          saveLatestCheckpoint(root, { params: a, optimizer: o, step: 3 });
        } catch (e) {
          assert.match(e.message, /injected failure/);
          threw = true;
        } finally {
          Object.assign(fs, original);
        }
        if (!threw) break;
        failures++;
        const b = filled(SPECS, 5);
        const ob = new AdamW(b);
        const { dir } = loadCheckpoint(root, { params: b, optimizer: ob });
        // The rename of latest is the commit point: before it, latest still names step 2.
        if (dir === path.join(root, 'step-00000002')) {
          sameBits(b.data, stepTwo, `failure at operation ${k}`);
          assert.equal(ob.stepCount, 2);
        } else {
          assert.equal(dir, path.join(root, 'step-00000003'));
          sameBits(b.data, a.data, `failure at operation ${k}, after the commit`);
          assert.equal(ob.stepCount, 3);
        }
        assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith('.')), [], `failure at operation ${k} leaves no temporary`);
      }
      assert.ok(failures > 10, `${failures} injection points`);
    });

    it('leaves the previous checkpoint loadable when the saving process is SIGKILLed mid-write', function () {
      this.timeout(20000);
      const dist = path.join(__dirname, '..', 'dist', 'training');
      // The child saves step 1, then dies by SIGKILL inside the k-th write of step 2's save.
      const child = (k) => `
        const fs = require('node:fs');
        const t = require(${JSON.stringify(dist)});
        const ps = new t.ParameterSet([{ name: 'big', shape: [1 << 18] }, { name: 'b', shape: [7] }]);
        ps.data.fill(1);
        t.saveLatestCheckpoint(${JSON.stringify(tmp)}, { params: ps, step: 1 });
        ps.data.fill(2);
        let writes = 0;
        const write = fs.writeSync;
        fs.writeSync = function (fd, buf, off, len, pos) {
          if (++writes === ${k}) { write.call(fs, fd, buf, off, Math.floor(len / 2), pos); process.kill(process.pid, 'SIGKILL'); }
          return write.apply(this, arguments);
        };
        t.saveLatestCheckpoint(${JSON.stringify(tmp)}, { params: ps, step: 2 });
        process.stdout.write('finished');`;
      // Writes of a save: model (length, header, 2 tensors), checkpoint.json, latest.
      for (const k of [3, 4, 5, 6]) {
        fs.rmSync(tmp, { recursive: true, force: true });
        const r = spawnSync(process.execPath, ['-e', child(k)], { encoding: 'utf8' });
        assert.equal(r.signal, 'SIGKILL', `write ${k}: ${r.stderr}${r.stdout}`);
        assert.equal(latestCheckpoint(tmp), path.join(tmp, 'step-00000001'), `write ${k}`);
        const ps = new ParameterSet([{ name: 'big', shape: [1 << 18] }, { name: 'b', shape: [7] }]);
        loadCheckpoint(tmp, { params: ps });
        assert.ok(ps.data.every((x) => x === 1), `write ${k}: step 1's parameters`);
        assert.ok(fs.readdirSync(tmp).some((n) => n.startsWith('.')), `write ${k}: the dead save's temporary is there`);
        // The next save clears what the dead process left.
        saveLatestCheckpoint(tmp, { params: ps, step: 3 });
        assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith('.')), [], `write ${k}: cleaned`);
      }
    });
  });
});
