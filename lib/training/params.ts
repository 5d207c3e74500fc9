import { createHash } from 'node:crypto';
import { DeviceBuffer } from '../index';
import { allocate, fillZero, release, view, type Float32Buffer } from './buffers';
import { argRangeError, argTypeError, checkKeys, checkNumber } from './errors';

/** A tensor to register: its name and shape (an empty shape is a scalar of one element). */
export interface TensorSpec {
  name: string;
  shape: readonly number[];
}

/** Where a registered tensor lives in the flat buffers. */
export interface TensorInfo {
  readonly name: string;
  readonly shape: readonly number[];
  /** The first element of the tensor in `data` and `grad`. */
  readonly offset: number;
  /** Elements (the product of the shape). */
  readonly size: number;
}

/** The part of one tensor that falls inside a range of the flat buffer. */
export interface TensorPiece {
  readonly name: string;
  /** The piece in flat-buffer elements: [begin, end). */
  readonly begin: number;
  readonly end: number;
  /** The same piece in the tensor's own (row-major) elements: [tensorBegin, tensorEnd). */
  readonly tensorBegin: number;
  readonly tensorEnd: number;
}

export interface ParameterSetOptions {
  /** The CUDA device to hold `data` and `grad` as DeviceBuffers; host Float32Arrays when absent. */
  device?: number;
  /**
   * The padded length is a multiple of this (default 1). Use
   * `ParameterSet.padMultiple(worldSize, blockSize)` when the set is to be sharded.
   */
  padMultiple?: number;
}

/**
 * Named tensors laid out one after another, in registration order, in ONE contiguous float32
 * buffer `data`, with gradients in `grad` of the same layout (DeepSpeed's flat partitions, torch
 * DDP's gradient_as_bucket_view). `view(name)` and `gradView(name)` are views of those buffers,
 * not copies: write gradients straight into `gradView(name)`.
 *
 * Padding, the one rule: `length` is `size` rounded up to a multiple of `options.padMultiple`,
 * the extra elements zero in both buffers and owned by no tensor. With
 * `padMultiple = ParameterSet.padMultiple(worldSize, blockSize)` every rank's shard
 * (`length / worldSize` elements) is the same size and starts on a block boundary.
 *
 * `B` narrows the buffer type for code that knows where its memory lives:
 * `new ParameterSet<Float32Array>(specs)` on host, `new ParameterSet<DeviceBuffer>(specs, { device: 0 })`.
 */
export class ParameterSet<B extends Float32Buffer = Float32Buffer> {
  /** The parameters, all tensors back to back, then the zero padding. */
  readonly data: B;
  /** The gradients, in the layout of `data`. */
  readonly grad: B;
  /** Sum of the tensors' sizes. */
  readonly size: number;
  /** `size` padded to a multiple of `padMultiple`: the length of `data` and `grad`. */
  readonly length: number;
  readonly padMultiple: number;
  /** The CUDA device of the buffers, or undefined for host memory. */
  readonly device: number | undefined;
  /** The tensors in registration order. */
  readonly tensors: readonly TensorInfo[];
  private readonly byName: Map<string, TensorInfo>;

  /**
   * The padding multiple that makes shards of `worldSize` ranks equal and block-aligned:
   * worldSize × blockSize (blockSize being, e.g., the quantization block of ZeRO++'s qwZ).
   */
  static padMultiple(worldSize: number, blockSize = 1): number {
    checkNumber('worldSize', worldSize, 1, 2 ** 20, true);
    checkNumber('blockSize', blockSize, 1, 2 ** 30, true);
    return worldSize * blockSize;
  }

  constructor(specs: readonly TensorSpec[], options?: ParameterSetOptions) {
    const o = checkKeys<ParameterSetOptions>('options', options, ['device', 'padMultiple']);
    const device = o.device === undefined ? undefined : checkNumber('options.device', o.device, 0, 2 ** 31 - 1, true);
    this.padMultiple = o.padMultiple === undefined ? 1 : checkNumber('options.padMultiple', o.padMultiple, 1, 2 ** 40, true);
    if (!Array.isArray(specs)) throw argTypeError('specs', 'an array of {name, shape}', specs);
    const tensors: TensorInfo[] = [];
    this.byName = new Map();
    let offset = 0;
    specs.forEach((spec, i) => {
      const info = checkSpec(spec, i, offset);
      if (this.byName.has(info.name)) throw argRangeError(`specs[${i}].name`, 'a name not registered before', info.name);
      this.byName.set(info.name, info);
      tensors.push(info);
      offset += info.size;
    });
    if (!Number.isSafeInteger(offset)) throw argRangeError('specs', 'at most 2^53 elements in all', offset);
    this.tensors = Object.freeze(tensors);
    this.size = offset;
    this.length = Math.ceil(offset / this.padMultiple) * this.padMultiple;
    this.device = device;
    this.data = allocate(this.length, device) as B;
    try {
      this.grad = allocate(this.length, device) as B;
    } catch (e) {
      release(this.data);
      throw e;
    }
  }

  /** The tensor's layout; unknown names are a RangeError naming them. */
  get(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (t === undefined) throw argRangeError('name', 'the name of a registered tensor', name);
    return t;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The tensor's parameters: a view of `data` (row-major in its shape). */
  view(name: string): B {
    const t = this.get(name);
    return view(this.data, t.offset, t.offset + t.size) as B;
  }

  /** The tensor's gradient: a view of `grad`. */
  gradView(name: string): B {
    const t = this.get(name);
    return view(this.grad, t.offset, t.offset + t.size) as B;
  }

  /** Sets every gradient (and the padding) to zero. */
  zeroGrad(): void {
    fillZero(this.grad);
  }

  /**
   * Rank `rank`'s shard of `worldSize` equal shards: elements [begin, end) of the flat buffers.
   * `length` must be divisible by `worldSize` (see `padMultiple`).
   */
  shardRange(rank: number, worldSize: number): { begin: number; end: number } {
    checkNumber('worldSize', worldSize, 1, 2 ** 20, true);
    checkNumber('rank', rank, 0, worldSize - 1, true);
    if (this.length % worldSize !== 0) {
      throw argRangeError(
        'worldSize',
        `a divisor of the padded length ${this.length} (build the ParameterSet with padMultiple: ParameterSet.padMultiple(${worldSize}))`,
        worldSize,
      );
    }
    const shard = this.length / worldSize;
    return { begin: rank * shard, end: (rank + 1) * shard };
  }

  /** The pieces of tensors inside the flat range [begin, end), in order; padding belongs to none. */
  piecesIn(begin: number, end: number): TensorPiece[] {
    checkNumber('begin', begin, 0, this.length, true);
    checkNumber('end', end, begin, this.length, true);
    const pieces: TensorPiece[] = [];
    for (let i = this.firstEndingAfter(begin); i < this.tensors.length; i++) {
      const t = this.tensors[i];
      if (t.offset >= end) break;
      const b = Math.max(begin, t.offset);
      const e = Math.min(end, t.offset + t.size);
      pieces.push({ name: t.name, begin: b, end: e, tensorBegin: b - t.offset, tensorEnd: e - t.offset });
    }
    return pieces;
  }

  /** What rank `rank` of `worldSize` owns: the tensor pieces of its `shardRange`. */
  ownership(rank: number, worldSize: number): TensorPiece[] {
    const { begin, end } = this.shardRange(rank, worldSize);
    return this.piecesIn(begin, end);
  }

  /**
   * A SHA-256 (hex) of the layout: the names, shapes and order of the tensors and the padded
   * length. Equal fingerprints mean the flat buffers line up element for element.
   */
  fingerprint(): string {
    const layout = JSON.stringify({ length: this.length, tensors: this.tensors.map((t) => [t.name, t.shape]) });
    return createHash('sha256').update(layout).digest('hex');
  }

  /** Releases device memory (no-op on host). Views from `view` / `gradView` become unusable. */
  free(): void {
    if (this.data instanceof DeviceBuffer) this.data.free();
    if (this.grad instanceof DeviceBuffer) this.grad.free();
  }

  private firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.tensors.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const t = this.tensors[mid];
      if (t.offset + t.size <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function checkSpec(spec: unknown, i: number, offset: number): TensorInfo {
  if (spec === null || typeof spec !== 'object') throw argTypeError(`specs[${i}]`, 'a {name, shape} object', spec);
  const { name, shape } = spec as Partial<TensorSpec>;
  for (const key of Object.keys(spec)) {
    if (key !== 'name' && key !== 'shape') throw argTypeError(`specs[${i}].${key}`, 'only the keys name and shape', key);
  }
  if (typeof name !== 'string' || name.length === 0) throw argTypeError(`specs[${i}].name`, 'a non-empty string', name);
  const label = `specs[${i}].shape (tensor ${JSON.stringify(name)})`;
  if (!Array.isArray(shape)) throw argTypeError(label, 'an array of positive integers', shape);
  let size = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d)) throw argTypeError(label, 'an array of positive integers', JSON.stringify(shape));
    if (d <= 0) throw argRangeError(label, 'positive dimensions', JSON.stringify(shape));
    size *= d;
  }
  if (!Number.isSafeInteger(size)) throw argRangeError(label, 'at most 2^53 elements', JSON.stringify(shape));
  return Object.freeze({ name, shape: Object.freeze([...shape]), offset, size });
}
