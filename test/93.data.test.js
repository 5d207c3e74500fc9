'use strict';
// collectives/training's data layer: the Fashion-MNIST reader against the installed data set
// (its expected bytes read here independently, straight from the gzip files) and against small
// idx files written byte by byte (good, corrupt, truncated, mismatched); DistributedSampler
// against torch's algorithm written out below over the sampler's own epoch order.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { loadFashionMnist, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, DistributedSampler, batches } = require('../dist/training');

const hasDataset = fs.existsSync(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));

function idx(magic, dims, data) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

// A folder holding a 3-image, 2 × 2 test split; `edit` changes the buffers before they are written.
function writeSplit(edit = {}, { gzip = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fmnist-'));
  let images = idx(0x803, [3, 2, 2], [0, 255, 51, 102, 1, 2, 3, 4, 254, 253, 128, 127]);
  let labels = idx(0x801, [3], [9, 0, 5]);
  if (edit.images) images = edit.images(images);
  if (edit.labels) labels = edit.labels(labels);
  const write = (name, bytes) => fs.writeFileSync(path.join(dir, gzip ? `${name}.gz` : name), gzip ? zlib.gzipSync(bytes) : bytes);
  write('t10k-images-idx3-ubyte', images);
  write('t10k-labels-idx1-ubyte', labels);
  return dir;
}

function rejectsWith(f, code, ...patterns) {
  assert.throws(f, (err) => {
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('93 data: Fashion-MNIST reader', function () {
  const dirs = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const tmp = (...a) => {
    const d = writeSplit(...a);
    dirs.push(d);
    return d;
  };

  describe('the installed data set', function () {
    before(function () {
      if (!hasDataset) this.skip(); // apt-get install dataset-fashion-mnist
    });

    for (const [split, prefix, count] of [
      ['train', 'train', 60000],
      ['test', 't10k', 10000],
    ]) {
      it(`${split}: ${count} images of 28 × 28 whose pixels and labels are the files' bytes`, function () {
        this.timeout(20000);
        const rawImages = zlib.gunzipSync(fs.readFileSync(path.join(FASHION_MNIST_DIR, `${prefix}-images-idx3-ubyte.gz`)));
        const rawLabels = zlib.gunzipSync(fs.readFileSync(path.join(FASHION_MNIST_DIR, `${prefix}-labels-idx1-ubyte.gz`)));
        const d = loadFashionMnist({ split });
        assert.equal(d.count, count);
        assert.equal(d.rows, 28);
        assert.equal(d.cols, 28);
        assert.ok(d.images instanceof Float32Array);
        assert.ok(d.labels instanceof Uint8Array);
        assert.equal(d.images.length, count * 784);
        assert.deepEqual(d.labels, new Uint8Array(rawLabels.subarray(8)));
        let first = -1;
        for (let i = 0; i < d.images.length && first < 0; i++) if (d.images[i] !== Math.fround(rawImages[16 + i] / 255)) first = i;
        assert.equal(first, -1, `pixel ${first} differs`);
      });
    }

    it('the first labels are the known ones (ankle boot, T-shirt, …)', function () {
      this.timeout(20000);
      assert.deepEqual([...loadFashionMnist({ split: 'test' }).labels.subarray(0, 10)], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
      assert.deepEqual([...loadFashionMnist({ split: 'train', limit: 10 }).labels], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    });

    it('limit keeps the first examples', function () {
      const full = loadFashionMnist({ split: 'test' });
      const d = loadFashionMnist({ split: 'test', limit: 25 });
      assert.equal(d.count, 25);
      assert.deepEqual(d.images, full.images.subarray(0, 25 * 784));
      assert.deepEqual(d.labels, full.labels.subarray(0, 25));
      assert.equal(loadFashionMnist({ split: 'test', limit: 20000 }).count, 10000);
    });
  });

  it('the class names', function () {
    assert.equal(FASHION_MNIST_CLASSES.length, 10);
    assert.equal(FASHION_MNIST_CLASSES[0], 'T-shirt/top');
    assert.equal(FASHION_MNIST_CLASSES[1], 'Trouser');
    assert.equal(FASHION_MNIST_CLASSES[9], 'Ankle boot');
  });

  for (const gzip of [false, true]) {
    it(`reads small ${gzip ? 'gzipped' : 'uncompressed'} idx files`, function () {
      const d = loadFashionMnist({ dir: tmp({}, { gzip }), split: 'test' });
      assert.equal(d.count, 3);
      assert.equal(d.rows, 2);
      assert.equal(d.cols, 2);
      assert.deepEqual([...d.labels], [9, 0, 5]);
      const pixels = [0, 255, 51, 102, 1, 2, 3, 4, 254, 253, 128, 127];
      assert.deepEqual(d.images, Float32Array.from(pixels, (p) => p / 255));
      assert.equal(d.images[1], 1);
      assert.equal(d.images[2], Math.fround(0.2));
    });
  }

  it('a corrupt magic number names the file and both numbers', function () {
    const dir = tmp({ images: (b) => (b.writeUInt32BE(0x801, 0), b) });
    rejectsWith(() => loadFashionMnist({ dir, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-images-idx3-ubyte/, /magic number 0x00000801, expected 0x00000803/);
    const dir2 = tmp({ labels: (b) => (b.writeUInt32BE(0x0c01, 0), b) }, { gzip: true });
    rejectsWith(() => loadFashionMnist({ dir: dir2, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-labels-idx1-ubyte\.gz/, /magic number 0x00000c01, expected 0x00000801/);
  });

  it('a truncated or overlong file names the file and the lengths', function () {
    const dir = tmp({ images: (b) => b.subarray(0, b.length - 1) });
    rejectsWith(() => loadFashionMnist({ dir, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-images-idx3-ubyte/, /truncated/, /3 × 2 × 2/, /has 27/);
    const dir2 = tmp({ labels: (b) => Buffer.concat([b, Buffer.from([1])]) });
    rejectsWith(() => loadFashionMnist({ dir: dir2, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-labels-idx1-ubyte/, /too long/);
    const dir3 = tmp({ images: (b) => b.subarray(0, 10) });
    rejectsWith(() => loadFashionMnist({ dir: dir3, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-images-idx3-ubyte/, /shorter than the 16-byte idx header/);
    const dir4 = tmp({}, { gzip: true });
    const gz = path.join(dir4, 't10k-labels-idx1-ubyte.gz');
    const bytes = fs.readFileSync(gz);
    fs.writeFileSync(gz, bytes.subarray(0, bytes.length - 6));
    rejectsWith(() => loadFashionMnist({ dir: dir4, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-labels-idx1-ubyte\.gz/, /gzip/);
  });

  it('image and label counts that differ name both files', function () {
    const dir = tmp({ labels: () => idx(0x801, [2], [1, 2]) });
    rejectsWith(() => loadFashionMnist({ dir, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-images-idx3-ubyte has 3 images/, /t10k-labels-idx1-ubyte has 2 labels/);
  });

  it('a label out of 0..9 names the file and the index', function () {
    const dir = tmp({ labels: () => idx(0x801, [3], [1, 10, 2]) });
    rejectsWith(() => loadFashionMnist({ dir, split: 'test' }), 'DATA_UNAVAILABLE', /t10k-labels-idx1-ubyte/, /label 10 at index 1/);
  });

  it('a missing folder or file: DATA_UNAVAILABLE with the apt-get hint and --data', function () {
    const missing = path.join(os.tmpdir(), 'no-such-fashion-mnist-dir');
    rejectsWith(() => loadFashionMnist({ dir: missing, split: 'train' }), 'DATA_UNAVAILABLE', /no-such-fashion-mnist-dir/, /apt-get install dataset-fashion-mnist/, /--data DIR/);
    const dir = tmp(); // a test split only
    rejectsWith(() => loadFashionMnist({ dir, split: 'train' }), 'DATA_UNAVAILABLE', /train-images-idx3-ubyte\.gz/, /not found/, /apt-get install dataset-fashion-mnist/);
  });

  it('bad options are INVALID_ARGUMENT naming the option', function () {
    rejectsWith(() => loadFashionMnist({ split: 'val' }), 'INVALID_ARGUMENT', /options\.split/);
    rejectsWith(() => loadFashionMnist(), 'INVALID_ARGUMENT', /options/);
    rejectsWith(() => loadFashionMnist({ split: 'test', limt: 3 }), 'INVALID_ARGUMENT', /options\.limt/);
    rejectsWith(() => loadFashionMnist({ split: 'test', limit: 0 }), 'INVALID_ARGUMENT', /options\.limit/);
    rejectsWith(() => loadFashionMnist({ split: 'test', dir: 3 }), 'INVALID_ARGUMENT', /options\.dir/);
  });
});

// torch's DistributedSampler.__iter__ / __init__, written over a given epoch order.
function torchReference(order, R, rank, dropLast) {
  const N = order.length;
  const numSamples = dropLast && N % R !== 0 ? Math.ceil((N - R) / R) + 0 : Math.ceil(N / R);
  const totalSize = numSamples * R;
  let indices = [...order];
  if (!dropLast) {
    const padding = totalSize - N;
    if (padding <= N) indices = indices.concat(indices.slice(0, padding));
    else indices = indices.concat([].concat(...Array(Math.ceil(padding / N)).fill(indices)).slice(0, padding));
  } else {
    indices = indices.slice(0, totalSize);
  }
  assert.equal(indices.length, totalSize);
  const mine = [];
  for (let i = rank; i < totalSize; i += R) mine.push(indices[i]);
  return { numSamples, totalSize, indices: mine };
}

// The epoch order the ranks share, rebuilt from their interleaved shares.
function epochOrder(N, R, options, epoch = 0) {
  const shares = [];
  for (let rank = 0; rank < R; rank++) {
    const s = new DistributedSampler(N, { numReplicas: R, rank, ...options });
    s.setEpoch(epoch);
    shares.push(s.indices());
  }
  const order = [];
  for (let p = 0; p < shares[0].length * R; p++) order.push(shares[p % R][Math.floor(p / R)]);
  return { shares, order };
}

const isPermutation = (a, N) => a.length === N && new Set(a).size === N && a.every((i) => Number.isInteger(i) && i >= 0 && i < N);

describe('93 data: DistributedSampler', function () {
  const cases = [];
  for (const N of [0, 1, 3, 10, 11, 12, 100, 101]) for (const R of [1, 2, 3, 4, 8]) for (const dropLast of [false, true]) cases.push([N, R, dropLast]);

  it("numSamples and totalSize are torch's (ceil, or floor with dropLast when N % R != 0)", function () {
    for (const [N, R, dropLast] of cases) {
      const s = new DistributedSampler(N, { numReplicas: R, rank: R - 1, dropLast });
      const ref = torchReference(Array.from({ length: N }, (_, i) => i), R, 0, dropLast);
      assert.equal(s.numSamples, ref.numSamples, `N ${N} R ${R} dropLast ${dropLast}`);
      assert.equal(s.numSamples, dropLast && N % R !== 0 ? Math.floor(N / R) : Math.ceil(N / R));
      assert.equal(s.totalSize, ref.totalSize);
      assert.equal(s.length, s.numSamples);
      assert.equal(s.indices().length, s.numSamples);
    }
  });

  it("shuffle: false gives torch's indices exactly, padding and dropLast included", function () {
    for (const [N, R, dropLast] of cases) {
      const order = Array.from({ length: N }, (_, i) => i);
      for (let rank = 0; rank < R; rank++) {
        const s = new DistributedSampler(N, { numReplicas: R, rank, shuffle: false, dropLast });
        assert.deepEqual([...s.indices()], torchReference(order, R, rank, dropLast).indices, `N ${N} R ${R} rank ${rank} dropLast ${dropLast}`);
      }
    }
  });

  it("shuffled: every rank takes torch's share of one permutation, the same whatever the number of ranks", function () {
    for (const [N, R, dropLast] of cases) {
      if (N === 0) continue;
      const { order: single } = epochOrder(N, 1, { seed: 7 }, 3);
      assert.ok(isPermutation(single, N), `N ${N}`);
      for (let rank = 0; rank < R; rank++) {
        const s = new DistributedSampler(N, { numReplicas: R, rank, seed: 7, dropLast });
        s.setEpoch(3);
        assert.deepEqual([...s.indices()], torchReference(single, R, rank, dropLast).indices, `N ${N} R ${R} rank ${rank} dropLast ${dropLast}`);
      }
    }
  });

  it('each epoch, the ranks are disjoint and cover the data set (exactly when N % R == 0)', function () {
    for (const epoch of [0, 1, 2]) {
      const { shares } = epochOrder(60000, 4, { seed: 42 }, epoch);
      const all = shares.flatMap((s) => [...s]);
      assert.ok(isPermutation(all, 60000), `epoch ${epoch}`);
    }
    // 10 over 4 ranks: 12 positions, the first two indices of the order repeated once each.
    const { shares, order } = epochOrder(10, 4, {});
    assert.ok(isPermutation(order.slice(0, 10), 10));
    assert.deepEqual(order.slice(10), order.slice(0, 2));
    assert.equal(new Set(shares.flatMap((s) => [...s])).size, 10);
    // With dropLast, 8 distinct indices and 2 left out.
    const dropped = epochOrder(10, 4, { dropLast: true });
    assert.equal(dropped.order.length, 8);
    assert.equal(new Set(dropped.order).size, 8);
  });

  it('the order changes with the epoch and the seed, as seed + epoch', function () {
    const at = (seed, epoch) => epochOrder(1000, 1, { seed }, epoch).order;
    const e0 = at(0, 0);
    const e1 = at(0, 1);
    assert.notDeepEqual(e0, e1);
    assert.notDeepEqual(e0, Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(at(1, 0), e1); // torch seeds its generator with seed + epoch
    assert.deepEqual(at(-5, 5), e0);
    assert.notDeepEqual(at(2 ** 40, 0), at(0, 0));
    assert.notDeepEqual(at(-1, 0), at(2 ** 32 - 1, 0));
  });

  it('is deterministic: the same options give the same indices, call after call', function () {
    const a = new DistributedSampler(5000, { numReplicas: 3, rank: 1, seed: 9 });
    const b = new DistributedSampler(5000, { numReplicas: 3, rank: 1, seed: 9 });
    a.setEpoch(4);
    b.setEpoch(4);
    assert.deepEqual(a.indices(), b.indices());
    assert.deepEqual(a.indices(), a.indices());
    assert.deepEqual([...a], [...a.indices()]);
    assert.equal(a.epoch, 4);
    // Pinned values: a change of generator would silently change every run's data order.
    const s = new DistributedSampler(10, { numReplicas: 1, rank: 0 });
    assert.deepEqual(epochOrder(10, 1, {}).order, [...s.indices()]);
    assert.equal(s.indices().join(','), PINNED_10);
  });

  it('batches() splits a rank\'s indices into views', function () {
    const ix = Uint32Array.from({ length: 10 }, (_, i) => i);
    assert.deepEqual(batches(ix, 4).map((b) => [...b]), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    assert.deepEqual(batches(ix, 4, { dropLast: true }).map((b) => b.length), [4, 4]);
    assert.deepEqual(batches(ix, 10).length, 1);
    assert.equal(batches(ix, 3)[1].buffer, ix.buffer);
    assert.deepEqual(batches(new Uint32Array(0), 3), []);
  });

  it('bad arguments are INVALID_ARGUMENT naming them', function () {
    rejectsWith(() => new DistributedSampler(10, { numReplicas: 2, rank: 2 }), 'INVALID_ARGUMENT', /options\.rank/, /0 to 1/);
    rejectsWith(() => new DistributedSampler(10, { numReplicas: 0, rank: 0 }), 'INVALID_ARGUMENT', /options\.numReplicas/);
    rejectsWith(() => new DistributedSampler(10), 'INVALID_ARGUMENT', /options/);
    rejectsWith(() => new DistributedSampler(-1, { numReplicas: 1, rank: 0 }), 'INVALID_ARGUMENT', /datasetSize/);
    rejectsWith(() => new DistributedSampler(1.5, { numReplicas: 1, rank: 0 }), 'INVALID_ARGUMENT', /datasetSize/);
    rejectsWith(() => new DistributedSampler(10, { numReplicas: 1, rank: 0, shufle: false }), 'INVALID_ARGUMENT', /options\.shufle/);
    rejectsWith(() => new DistributedSampler(10, { numReplicas: 1, rank: 0, shuffle: 1 }), 'INVALID_ARGUMENT', /options\.shuffle/);
    rejectsWith(() => new DistributedSampler(10, { numReplicas: 1, rank: 0, seed: 0.5 }), 'INVALID_ARGUMENT', /options\.seed/);
    rejectsWith(() => new DistributedSampler(10, { numReplicas: 1, rank: 0 }).setEpoch(-1), 'INVALID_ARGUMENT', /epoch/);
    rejectsWith(() => batches([1, 2], 2), 'INVALID_ARGUMENT', /indices/);
    rejectsWith(() => batches(new Uint32Array(2), 0), 'INVALID_ARGUMENT', /batchSize/);
  });
});

const PINNED_10 = '3,6,1,5,0,4,2,9,7,8';
