import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TrainingError, argTypeError, checkKeys, checkNumber } from '../errors';

/**
 * Where Debian's and Ubuntu's `dataset-fashion-mnist` package installs the four idx files.
 */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The ten class names, indexed by label (the names of the data set's own README). */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

export type FashionMnistSplit = 'train' | 'test';

export interface FashionMnistOptions {
  /** The folder holding the idx files, gzipped or not (default FASHION_MNIST_DIR). */
  dir?: string;
  /** 'train' (60000 examples) or 'test' (10000). */
  split: FashionMnistSplit;
  /**
   * Keep only the first `limit` examples (at most the split's count). The whole files are still
   * read and checked: the limit saves the conversion and the memory of the images, not the read.
   */
  limit?: number;
}

export interface FashionMnist {
  /** count × rows × cols pixels, row-major per image, scaled from 0..255 to [0, 1]. */
  images: Float32Array;
  /** One label per image, 0..9 (an index into FASHION_MNIST_CLASSES). */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

const IMAGES_MAGIC = 0x00000803; // unsigned bytes, 3 dimensions
const LABELS_MAGIC = 0x00000801; // unsigned bytes, 1 dimension
const CLASS_COUNT = FASHION_MNIST_CLASSES.length;

// The files keep MNIST's names: the test split is "t10k".
const PREFIX: Record<FashionMnistSplit, string> = { train: 'train', test: 't10k' };

function unavailable(message: string): TrainingError {
  return new TrainingError(
    'DATA_UNAVAILABLE',
    `${message}. Install the data set with \`sudo apt-get install dataset-fashion-mnist\` ` +
      `(it goes to ${FASHION_MNIST_DIR}), or pass \`dir\` (the example's --data DIR) naming a folder ` +
      'with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and ' +
      't10k-labels-idx1-ubyte, each gzipped (.gz) or not',
  );
}

function corrupt(file: string, what: string): TrainingError {
  return new TrainingError('DATA_UNAVAILABLE', `Fashion-MNIST file ${file} is corrupt: ${what}`);
}

/** The file's bytes, gunzipped when they start with the gzip magic; the `.gz` name is tried first. */
function readIdx(dir: string, name: string): { file: string; bytes: Buffer } {
  const candidates = [join(dir, `${name}.gz`), join(dir, name)];
  const file = candidates.find((f) => existsSync(f));
  if (file === undefined) throw unavailable(`Fashion-MNIST file ${candidates[0]} (or ${candidates[1]}) not found`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw unavailable(`Fashion-MNIST file ${file} cannot be read (${(err as Error).message})`);
  }
  // Decide by content, not by name: a file gunzipped in place but left with its .gz name still reads.
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw corrupt(file, `not a valid gzip stream (${(err as Error).message})`);
    }
  }
  return { file, bytes };
}

function checkHeader(file: string, bytes: Buffer, magic: number, dims: number, kind: string): number[] {
  const headerBytes = 4 + 4 * dims;
  if (bytes.length < headerBytes) {
    throw corrupt(file, `${bytes.length} bytes is shorter than the ${headerBytes}-byte idx header of ${kind}`);
  }
  const got = bytes.readUInt32BE(0);
  if (got !== magic) {
    throw corrupt(file, `magic number 0x${hex(got)}, expected 0x${hex(magic)} (idx ${kind}: unsigned bytes, ${dims} dimension${dims > 1 ? 's' : ''})`);
  }
  const shape: number[] = [];
  for (let i = 0; i < dims; i++) shape.push(bytes.readUInt32BE(4 + 4 * i));
  const expected = headerBytes + shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) {
    const how = bytes.length < expected ? 'truncated' : 'too long';
    throw corrupt(file, `${how}: its header says ${shape.join(' × ')} bytes of data (${expected} bytes with the header), the file has ${bytes.length}`);
  }
  return shape;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * Reads one split of Fashion-MNIST from its idx files, synchronously (about a second for the
 * training split): images as float32 in [0, 1], labels as bytes.
 *
 * A missing folder or file is a TrainingError DATA_UNAVAILABLE that says how to install the data
 * set; a file that is not what an idx file of this data set must be (magic number, dimensions,
 * length, labels out of range, image and label counts that differ) is a DATA_UNAVAILABLE naming
 * the file and what is wrong.
 */
export function loadFashionMnist(options: FashionMnistOptions): FashionMnist {
  if (options === undefined) throw argTypeError('options', "an options object with split 'train' or 'test'", options);
  const opts = checkKeys<FashionMnistOptions>('options', options, ['dir', 'split', 'limit']);
  if (opts.split !== 'train' && opts.split !== 'test') throw argTypeError('options.split', "'train' or 'test'", opts.split);
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  if (typeof dir !== 'string' || dir === '') throw argTypeError('options.dir', 'a folder path', dir);
  const limit = opts.limit === undefined ? Infinity : checkNumber('options.limit', opts.limit, 1, 2 ** 32 - 1, true);

  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw unavailable(`Fashion-MNIST folder ${dir} not found`);
  }
  if (!isDir) throw unavailable(`Fashion-MNIST folder ${dir} is not a folder`);

  const prefix = PREFIX[opts.split];
  const img = readIdx(dir, `${prefix}-images-idx3-ubyte`);
  const lab = readIdx(dir, `${prefix}-labels-idx1-ubyte`);
  const [imageCount, rows, cols] = checkHeader(img.file, img.bytes, IMAGES_MAGIC, 3, 'images');
  const [labelCount] = checkHeader(lab.file, lab.bytes, LABELS_MAGIC, 1, 'labels');
  if (rows === 0 || cols === 0) throw corrupt(img.file, `images of ${rows} × ${cols} pixels`);
  if (imageCount !== labelCount) {
    throw new TrainingError(
      'DATA_UNAVAILABLE',
      `Fashion-MNIST files do not match: ${img.file} has ${imageCount} images, ${lab.file} has ${labelCount} labels`,
    );
  }

  const count = Math.min(imageCount, limit);
  const labels = new Uint8Array(count);
  labels.set(lab.bytes.subarray(8, 8 + count));
  for (let i = 0; i < labelCount; i++) {
    const label = lab.bytes[8 + i];
    if (label >= CLASS_COUNT) throw corrupt(lab.file, `label ${label} at index ${i}, expected 0 to ${CLASS_COUNT - 1}`);
  }
  const pixels = count * rows * cols;
  const images = new Float32Array(pixels);
  const src = img.bytes;
  for (let i = 0; i < pixels; i++) images[i] = src[16 + i] / 255;
  return { images, labels, count, rows, cols };
}
