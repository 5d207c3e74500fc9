'use strict';
// ParameterSet: the flat layout (offsets in registration order, padding to padMultiple), views
// that share memory with data / grad, shard ranges and what each shard owns, the layout
// fingerprint, and the argument checks.

const assert = require('node:assert/strict');
const { ParameterSet } = require('../dist/training');

const SPECS = [
  { name: 'fc1.weight', shape: [4, 3] },
  { name: 'fc1.bias', shape: [4] },
  { name: 'scalar', shape: [] },
  { name: 'fc2.weight', shape: [2, 4] },
];

function invalidArgument(re) {
  return (e) => e.code === 'INVALID_ARGUMENT' && re.test(e.message);
}

describe('90 training: ParameterSet', function () {
  it('lays the tensors out back to back in registration order, padded with zeros', function () {
    const ps = new ParameterSet(SPECS, { padMultiple: 8 });
    assert.deepEqual(
      ps.tensors.map((t) => [t.name, [...t.shape], t.offset, t.size]),
      [['fc1.weight', [4, 3], 0, 12], ['fc1.bias', [4], 12, 4], ['scalar', [], 16, 1], ['fc2.weight', [2, 4], 17, 8]],
    );
    assert.equal(ps.size, 25);
    assert.equal(ps.length, 32);
    assert.ok(ps.data instanceof Float32Array && ps.data.length === 32);
    assert.ok(ps.grad instanceof Float32Array && ps.grad.length === 32);
    assert.notEqual(ps.data.buffer, ps.grad.buffer);
    assert.equal(new ParameterSet(SPECS).length, 25);
    assert.equal(new ParameterSet(SPECS, { padMultiple: 25 }).length, 25);
    assert.deepEqual(ps.get('fc1.bias'), { name: 'fc1.bias', shape: [4], offset: 12, size: 4 });
    assert.equal(ps.has('fc1.bias'), true);
    assert.equal(ps.has('nope'), false);
  });

  it('hands out views of data and grad, not copies', function () {
    const ps = new ParameterSet(SPECS, { padMultiple: 8 });
    const w = ps.view('fc2.weight');
    const g = ps.gradView('fc2.weight');
    assert.equal(w.buffer, ps.data.buffer);
    assert.equal(g.buffer, ps.grad.buffer);
    w.fill(3);
    g.set([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual([...ps.data.subarray(17, 25)], [3, 3, 3, 3, 3, 3, 3, 3]);
    assert.deepEqual([...ps.grad.subarray(17, 25)], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(ps.data[16], 0);
    assert.deepEqual([...ps.data.subarray(25)], new Array(7).fill(0), 'padding stays zero');
    ps.data[0] = 9;
    assert.equal(ps.view('fc1.weight')[0], 9);
    ps.zeroGrad();
    assert.ok(ps.grad.every((x) => x === 0));
    assert.equal(ps.data[0], 9, 'zeroGrad leaves the parameters');
  });

  it('pads to worldSize × blockSize so shards are equal and block-aligned', function () {
    assert.equal(ParameterSet.padMultiple(4), 4);
    assert.equal(ParameterSet.padMultiple(3, 64), 192);
    const ps = new ParameterSet(SPECS, { padMultiple: ParameterSet.padMultiple(3, 4) });
    assert.equal(ps.length, 36);
    const ranges = [0, 1, 2].map((r) => ps.shardRange(r, 3));
    assert.deepEqual(ranges, [{ begin: 0, end: 12 }, { begin: 12, end: 24 }, { begin: 24, end: 36 }]);
    for (const r of ranges) assert.equal(r.begin % 4, 0);
    assert.throws(() => ps.shardRange(0, 5), invalidArgument(/^worldSize: expected a divisor of the padded length 36 .*padMultiple/));
    assert.throws(() => ps.shardRange(3, 3), invalidArgument(/^rank: /));
  });

  it('says which tensors, and which elements of each, fall in a shard', function () {
    const ps = new ParameterSet(SPECS, { padMultiple: ParameterSet.padMultiple(4) });
    assert.equal(ps.length, 28);
    const own = [0, 1, 2, 3].map((r) => ps.ownership(r, 4));
    assert.deepEqual(own[0], [{ name: 'fc1.weight', begin: 0, end: 7, tensorBegin: 0, tensorEnd: 7 }]);
    assert.deepEqual(own[1], [
      { name: 'fc1.weight', begin: 7, end: 12, tensorBegin: 7, tensorEnd: 12 },
      { name: 'fc1.bias', begin: 12, end: 14, tensorBegin: 0, tensorEnd: 2 },
    ]);
    assert.deepEqual(own[2], [
      { name: 'fc1.bias', begin: 14, end: 16, tensorBegin: 2, tensorEnd: 4 },
      { name: 'scalar', begin: 16, end: 17, tensorBegin: 0, tensorEnd: 1 },
      { name: 'fc2.weight', begin: 17, end: 21, tensorBegin: 0, tensorEnd: 4 },
    ]);
    // The last shard ends in padding, which no tensor owns.
    assert.deepEqual(own[3], [{ name: 'fc2.weight', begin: 21, end: 25, tensorBegin: 4, tensorEnd: 8 }]);
    // Every element of every tensor is owned exactly once.
    const count = new Map();
    for (const p of own.flat()) count.set(p.name, (count.get(p.name) ?? 0) + p.tensorEnd - p.tensorBegin);
    for (const t of ps.tensors) assert.equal(count.get(t.name), t.size, t.name);
    assert.deepEqual(ps.piecesIn(25, 28), []);
    assert.deepEqual(ps.piecesIn(16, 17), [{ name: 'scalar', begin: 16, end: 17, tensorBegin: 0, tensorEnd: 1 }]);
  });

  it('fingerprints the names, shapes, order and padded length', function () {
    const fp = new ParameterSet(SPECS).fingerprint();
    assert.match(fp, /^[0-9a-f]{64}$/);
    assert.equal(new ParameterSet(SPECS.map((s) => ({ ...s }))).fingerprint(), fp);
    assert.notEqual(new ParameterSet([...SPECS].reverse()).fingerprint(), fp, 'order');
    assert.notEqual(new ParameterSet([{ name: 'fc1.weight', shape: [3, 4] }, ...SPECS.slice(1)]).fingerprint(), fp, 'shape');
    assert.notEqual(new ParameterSet([{ name: 'fc1.w', shape: [4, 3] }, ...SPECS.slice(1)]).fingerprint(), fp, 'name');
    assert.notEqual(new ParameterSet(SPECS, { padMultiple: 2 }).fingerprint(), fp, 'padding');
  });

  it('refuses duplicate names and bad shapes, naming the tensor', function () {
    assert.throws(() => new ParameterSet([{ name: 'a', shape: [2] }, { name: 'a', shape: [3] }]), invalidArgument(/^specs\[1\]\.name: .*"a"/));
    for (const [shape, re] of [
      [[2, 0], /positive dimensions/],
      [[-1], /positive dimensions/],
      [[1.5], /positive integers/],
      [['2'], /positive integers/],
      ['2', /positive integers/],
    ]) {
      assert.throws(() => new ParameterSet([{ name: 'ok', shape: [1] }, { name: 'bad.weight', shape }]), (e) => {
        assert.equal(e.code, 'INVALID_ARGUMENT');
        assert.match(e.message, /^specs\[1\]\.shape \(tensor "bad\.weight"\)/);
        assert.match(e.message, re);
        return true;
      });
    }
    assert.throws(() => new ParameterSet([{ name: '', shape: [1] }]), invalidArgument(/^specs\[0\]\.name/));
    assert.throws(() => new ParameterSet([{ name: 'a', shape: [1], dtype: 'f32' }]), invalidArgument(/^specs\[0\]\.dtype/));
    assert.throws(() => new ParameterSet('a'), invalidArgument(/^specs: /));
  });

  it('validates its options and arguments', function () {
    assert.throws(() => new ParameterSet(SPECS, { pad: 4 }), invalidArgument(/^options\.pad: /));
    assert.throws(() => new ParameterSet(SPECS, { padMultiple: 0 }), invalidArgument(/^options\.padMultiple: /));
    assert.throws(() => new ParameterSet(SPECS, { padMultiple: 2.5 }), invalidArgument(/^options\.padMultiple: /));
    assert.throws(() => new ParameterSet(SPECS, { device: -1 }), invalidArgument(/^options\.device: /));
    assert.throws(() => ParameterSet.padMultiple(0), invalidArgument(/^worldSize: /));
    assert.throws(() => ParameterSet.padMultiple(2, 0), invalidArgument(/^blockSize: /));
    const ps = new ParameterSet(SPECS);
    assert.throws(() => ps.view('nope'), invalidArgument(/^name: .*"nope"/));
    assert.throws(() => ps.piecesIn(3, 2), invalidArgument(/^end: /));
  });

  it('puts data and grad in device memory when options.device is given', function () {
    const { backends } = require('../dist');
    if (backends().cuda.available) this.skip(); // test/gpu/ covers the device case
    assert.throws(() => new ParameterSet(SPECS, { device: 0 }), (e) => e.code === 'BACKEND_UNAVAILABLE');
  });
});
