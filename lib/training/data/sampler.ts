import { argRangeError, argTypeError, checkKeys, checkNumber } from '../errors';

export interface DistributedSamplerOptions {
  /** How many ranks share the data set (torch's num_replicas; usually comm.size). */
  numReplicas: number;
  /** This rank, 0 to numReplicas − 1 (usually comm.rank). */
  rank: number;
  /** Shuffle every epoch (default true). */
  shuffle?: boolean;
  /** The shuffle's seed; the epoch is added to it (default 0). Every rank must pass the same. */
  seed?: number;
  /**
   * Drop the tail so that every rank gets floor(N / numReplicas) examples (default false: pad
   * by repeating the first indices so that every rank gets ceil(N / numReplicas)).
   */
  dropLast?: boolean;
}

const MAX_SIZE = 2 ** 32 - 1; // indices are Uint32Array elements

/**
 * torch.utils.data.DistributedSampler: each rank's share of a data set's indices for an epoch.
 *
 * The epoch's order is a permutation of 0..N−1 (shuffled, or in order), the same on every rank;
 * without dropLast it is padded by repeating its first indices to a multiple of numReplicas,
 * with dropLast it is cut to a multiple; rank r takes every numReplicas-th index from r. So the
 * ranks' indices are disjoint positions of one list that covers the data set, and numSamples and
 * totalSize are what torch computes.
 *
 * The shuffle is deterministic in seed + epoch but is not torch.randperm's: a Fisher–Yates
 * shuffle driven by xoshiro128** seeded through SplitMix32. The same seed therefore gives the
 * same order here on every rank, run and platform, but not the order torch would give.
 *
 * numReplicas and rank are not taken from the environment: the sampler has no process group to
 * ask, and the communicator the caller already holds is the source of truth (comm.size, comm.rank).
 */
export class DistributedSampler implements Iterable<number> {
  readonly datasetSize: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** How many indices each rank gets per epoch (torch's num_samples, its len()). */
  readonly numSamples: number;
  /** numSamples × numReplicas: the padded or truncated epoch's length. */
  readonly totalSize: number;
  private currentEpoch = 0;

  constructor(datasetSize: number, options: DistributedSamplerOptions) {
    this.datasetSize = checkNumber('datasetSize', datasetSize, 0, MAX_SIZE, true);
    if (options === undefined) throw argTypeError('options', 'an options object with numReplicas and rank', options);
    const opts = checkKeys<DistributedSamplerOptions>('options', options, ['numReplicas', 'rank', 'shuffle', 'seed', 'dropLast']);
    this.numReplicas = checkNumber('options.numReplicas', opts.numReplicas, 1, MAX_SIZE, true);
    this.rank = checkNumber('options.rank', opts.rank, 0, this.numReplicas - 1, true);
    this.shuffle = checkBoolean('options.shuffle', opts.shuffle, true);
    this.seed = opts.seed === undefined ? 0 : checkNumber('options.seed', opts.seed, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
    this.dropLast = checkBoolean('options.dropLast', opts.dropLast, false);
    const n = this.datasetSize;
    const r = this.numReplicas;
    // torch: ceil((N − R) / R) when drop_last and N % R != 0, which is floor(N / R) (0 when N < R).
    this.numSamples = this.dropLast && n % r !== 0 ? Math.floor(n / r) : Math.ceil(n / r);
    this.totalSize = this.numSamples * r;
    if (this.totalSize > MAX_SIZE) throw argRangeError('datasetSize', `a size whose padded epoch fits in ${MAX_SIZE} indices`, n);
  }

  /** The epoch whose order indices() gives (torch's set_epoch); call it before each epoch. */
  setEpoch(epoch: number): void {
    this.currentEpoch = checkNumber('epoch', epoch, 0, Number.MAX_SAFE_INTEGER, true);
  }

  get epoch(): number {
    return this.currentEpoch;
  }

  /** Same as numSamples (torch's len(sampler)). */
  get length(): number {
    return this.numSamples;
  }

  /** This rank's numSamples indices for the current epoch, in the order to visit them. */
  indices(): Uint32Array {
    const n = this.datasetSize;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    if (this.shuffle) {
      const seed = this.seed + this.currentEpoch;
      if (!Number.isSafeInteger(seed)) throw argRangeError('epoch', `an epoch for which seed + epoch is a safe integer (seed ${this.seed})`, this.currentEpoch);
      shuffleInPlace(order, seed);
    }
    const out = new Uint32Array(this.numSamples);
    // Position p of the padded epoch is order[p % n]: padding repeats the order from its start,
    // as many times over as it takes (torch's `indices * ceil(padding / N)` when N < R).
    for (let i = 0, p = this.rank; i < out.length; i++, p += this.numReplicas) out[i] = order[p % n];
    return out;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}

/**
 * Splits `indices` into consecutive batches of `batchSize` (views, not copies); the last one is
 * shorter unless `dropLast`, as torch's DataLoader does.
 */
export function batches(indices: Uint32Array, batchSize: number, options?: { dropLast?: boolean }): Uint32Array[] {
  if (!(indices instanceof Uint32Array)) throw argTypeError('indices', 'a Uint32Array (from DistributedSampler.indices())', indices);
  checkNumber('batchSize', batchSize, 1, MAX_SIZE, true);
  const opts = checkKeys<{ dropLast?: boolean }>('options', options, ['dropLast']);
  const dropLast = checkBoolean('options.dropLast', opts.dropLast, false);
  const out: Uint32Array[] = [];
  for (let start = 0; start < indices.length; start += batchSize) {
    const end = Math.min(start + batchSize, indices.length);
    if (dropLast && end - start < batchSize) break;
    out.push(indices.subarray(start, end));
  }
  return out;
}

function checkBoolean(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw argTypeError(name, 'a boolean', v);
  return v;
}

/** Fisher–Yates over xoshiro128**, the generator's state seeded from all 53 bits of `seed`. */
function shuffleInPlace(a: Uint32Array, seed: number): void {
  const next = xoshiro128ss(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = below(next, i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/** An unbiased integer in [0, bound) for bound ≤ 2^32 (rejection of the short last interval). */
function below(next: () => number, bound: number): number {
  const limit = 2 ** 32 - (2 ** 32 % bound);
  for (;;) {
    const x = next();
    if (x < limit) return x % bound;
  }
}

function xoshiro128ss(seed: number): () => number {
  // Two's-complement split so that negative seeds differ from positive ones.
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  let sm = (lo ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
  const splitmix32 = (): number => {
    sm = (sm + 0x9e3779b9) >>> 0;
    let z = sm;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = splitmix32() ^ hi;
  let s1 = splitmix32();
  let s2 = splitmix32();
  let s3 = splitmix32();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
  return () => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
