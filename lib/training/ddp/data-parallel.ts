import type { Communicator } from '../../index';
import { view, type Float32Buffer } from '../buffers';
import { TrainingError, TrainingErrorCode, argRangeError, argTypeError, checkKeys, checkNumber } from '../errors';
import type { Optimizer } from '../optim';
import type { ParameterSet } from '../params';
import { assignBuckets, type Bucket } from './buckets';
import { COMPRESSIONS, type CommHook, type Compression, makeHook } from './comm-hooks';
import { checkSameLayout } from './layout-check';

export interface DataParallelOptions {
  /** Bucket cap in MiB (torch's bucket_cap_mb; default 25). */
  bucketCapMB?: number;
  /** Cap of the first bucket in MiB (torch's first bucket: 1 MiB by default). */
  firstBucketCapMB?: number;
  /** The communication hook (default 'none', a float32 average). */
  compress?: Compression;
  /** Elements per scale for 'int8', 'int4', 'fp8' (default DEFAULT_BLOCK_SIZE). */
  blockSize?: number;
  /** Error feedback for 'int8', 'int4', 'fp8' (default true). */
  errorFeedback?: boolean;
  /** Broadcast rank 0's parameters at construction (default true, as torch DDP). */
  broadcastParameters?: boolean;
}

interface BucketState {
  readonly bucket: Bucket;
  readonly grad: Float32Buffer;
  /** Tensors of this bucket not yet marked ready in this step. */
  pending: number;
  /** The average in flight (or landed) this step. */
  done: Promise<void> | undefined;
}

const KEYS = ['bucketCapMB', 'firstBucketCapMB', 'compress', 'blockSize', 'errorFeedback', 'broadcastParameters'];

/**
 * Data-parallel training with torch DDP's semantics over a ParameterSet.
 *
 * `DataParallel.create()` compares the ranks' parameter layouts (an error naming the first
 * tensor that differs, on every rank) and broadcasts rank 0's parameters. In each step the user
 * writes gradients into `params.gradView(name)` and calls `gradReady(name)` as each is done
 * (in the order the backward pass produces them, usually reverse registration order); the moment
 * a bucket's last gradient is ready its average starts asynchronously, so communication overlaps
 * the rest of the backward pass. Buckets start in bucket order on every rank whatever order the
 * gradients arrive in (a bucket that fills early waits for the ones before it), so every rank
 * issues the same collectives in the same order. `await synchronize()` waits for every bucket;
 * `synchronizeAndStep(optimizer)` steps each bucket's range as soon as it lands.
 *
 * `noSync(fn)` runs fn (gradient accumulation, like torch's no_sync()): gradReady() inside it
 * starts nothing and synchronize() returns at once; accumulate into the gradient views (add,
 * don't overwrite), and the next step outside noSync averages the sums.
 */
export class DataParallel {
  readonly comm: Communicator;
  readonly params: ParameterSet;
  readonly buckets: readonly Bucket[];
  readonly compression: Compression;
  readonly #states: BucketState[];
  readonly #bucketOf = new Map<string, number>();
  readonly #ready = new Set<string>();
  readonly #hook: CommHook;
  #nextLaunch = 0;
  #syncing = 0;
  #inStep = false;

  private constructor(comm: Communicator, params: ParameterSet, o: DataParallelOptions) {
    this.comm = comm;
    this.params = params;
    const mib = 1024 * 1024;
    this.buckets = assignBuckets(params.tensors, {
      capBytes: (o.bucketCapMB ?? 25) * mib,
      firstCapBytes: (o.firstBucketCapMB ?? 1) * mib,
    });
    this.#states = this.buckets.map((bucket) => ({ bucket, grad: view(params.grad, bucket.begin, bucket.end), pending: bucket.names.length, done: undefined }));
    for (const b of this.buckets) for (const name of b.names) this.#bucketOf.set(name, b.index);
    this.compression = o.compress ?? 'none';
    this.#hook = makeHook(this.compression, { blockSize: o.blockSize, errorFeedback: o.errorFeedback ?? true });
  }

  /** Checks the options, compares the layouts across ranks and broadcasts rank 0's parameters. */
  static async create(comm: Communicator, params: ParameterSet, options?: DataParallelOptions): Promise<DataParallel> {
    if (comm === null || typeof comm !== 'object' || typeof (comm as Communicator).allReduce !== 'function') {
      throw argTypeError('comm', 'a Communicator', comm);
    }
    if (params === null || typeof params !== 'object' || !Array.isArray((params as ParameterSet).tensors)) {
      throw argTypeError('params', 'a ParameterSet', params);
    }
    const o = checkKeys<DataParallelOptions>('options', options, KEYS);
    if (o.bucketCapMB !== undefined) checkNumber('options.bucketCapMB', o.bucketCapMB, 2 ** -20, 1 << 16);
    if (o.firstBucketCapMB !== undefined) checkNumber('options.firstBucketCapMB', o.firstBucketCapMB, 2 ** -20, 1 << 16);
    if (o.compress !== undefined && !COMPRESSIONS.includes(o.compress)) {
      throw argTypeError('options.compress', `one of ${COMPRESSIONS.join(', ')}`, o.compress);
    }
    if (o.blockSize !== undefined) checkNumber('options.blockSize', o.blockSize, 8, 1 << 20, true);
    for (const k of ['errorFeedback', 'broadcastParameters'] as const) {
      if (o[k] !== undefined && typeof o[k] !== 'boolean') throw argTypeError(`options.${k}`, 'a boolean', o[k]);
    }
    await checkSameLayout(comm, params, 'DataParallel');
    if (o.broadcastParameters !== false) await comm.broadcast(params.data, { root: 0 });
    return new DataParallel(comm, params, o);
  }

  /**
   * Marks `name`'s gradient as written for this step. When it completes its bucket (and every
   * bucket before it has started), the bucket's average starts at once.
   */
  gradReady(name: string): void {
    const index = this.#bucketOf.get(name);
    if (index === undefined) throw argRangeError('name', 'the name of a tensor of the ParameterSet', name);
    if (this.#ready.has(name)) throw argRangeError('name', 'a gradient not yet marked ready in this step', name);
    this.#ready.add(name);
    this.#inStep = true;
    if (this.#syncing > 0) return;
    this.#states[index].pending--;
    this.#launchReady();
  }

  /** Marks every gradient not yet marked, in reverse registration order (e.g. after tf.variableGrads). */
  gradsReady(): void {
    for (let i = this.params.tensors.length - 1; i >= 0; i--) {
      const name = this.params.tensors[i].name;
      if (!this.#ready.has(name)) this.gradReady(name);
    }
  }

  /** Runs `fn` without synchronizing gradients (accumulation); returns what fn returns. */
  async noSync<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.#nextLaunch > 0) {
      throw new TrainingError(TrainingErrorCode.INVALID_STATE, 'noSync: buckets of this step are already in flight; call synchronize() first');
    }
    this.#syncing++;
    try {
      return await fn();
    } finally {
      this.#syncing--;
      if (this.#syncing === 0) this.#resetStep();
    }
  }

  /**
   * Waits until every bucket holds the average over the ranks. A gradient never marked ready is
   * a GRADIENT_NOT_READY error naming it, raised after the remaining buckets have been averaged
   * (with whatever that rank's gradient views held), so the other ranks never wait for this one.
   */
  async synchronize(): Promise<void> {
    await this.#synchronize(undefined);
  }

  /**
   * synchronize(), stepping `optimizer` over each bucket's range as soon as that bucket lands
   * (the bits equal synchronize() then optimizer.step(): the update is elementwise). Nothing is
   * stepped when a gradient was not ready.
   */
  async synchronizeAndStep(optimizer: Optimizer): Promise<void> {
    if (optimizer === null || typeof optimizer !== 'object' || typeof (optimizer as Optimizer).stepRange !== 'function') {
      throw argTypeError('optimizer', 'an Optimizer (AdamW, SGD)', optimizer);
    }
    await this.#synchronize(optimizer);
  }

  async #synchronize(optimizer: Optimizer | undefined): Promise<void> {
    if (this.#syncing > 0) {
      this.#resetStep();
      return;
    }
    const missing = this.params.tensors.filter((t) => !this.#ready.has(t.name)).map((t) => t.name);
    // Start whatever is left, in bucket order, so every rank issues the same collectives.
    for (const s of this.#states) s.pending = 0;
    this.#launchReady();
    try {
      for (const s of this.#states) {
        await s.done;
        if (optimizer !== undefined && missing.length === 0) {
          const b = Math.max(s.bucket.begin, optimizer.range.begin);
          const e = Math.min(s.bucket.end, optimizer.range.end);
          if (b < e) optimizer.stepRange(b, e);
        }
      }
      if (optimizer !== undefined && missing.length === 0) optimizer.endStep();
    } finally {
      this.#resetStep();
    }
    if (missing.length > 0) {
      const shown = missing.slice(0, 8).map((n) => JSON.stringify(n)).join(', ');
      throw new TrainingError(
        TrainingErrorCode.GRADIENT_NOT_READY,
        `synchronize on rank ${this.comm.rank}: ${missing.length} gradient${missing.length > 1 ? 's were' : ' was'} never marked ready: ${shown}${missing.length > 8 ? ', …' : ''} (call gradReady(name) for each, or gradsReady())`,
      );
    }
  }

  /**
   * Releases the device memory the communication hook keeps between steps (the half-precision
   * copies, the error-feedback residuals); the next step makes them again. The parameters are
   * the ParameterSet's to free.
   */
  free(): void {
    this.#hook.free();
  }

  /** True between the first gradReady() of a step and its synchronize(). */
  get inStep(): boolean {
    return this.#inStep;
  }

  #launchReady(): void {
    while (this.#nextLaunch < this.#states.length && this.#states[this.#nextLaunch].pending === 0) {
      const s = this.#states[this.#nextLaunch++];
      s.done = this.#hook.average(this.comm, s.bucket.index, s.grad);
      // Awaited in synchronize(); a failure must not surface as unhandled before that.
      s.done.catch(() => {});
    }
  }

  #resetStep(): void {
    this.#ready.clear();
    this.#nextLaunch = 0;
    this.#inStep = false;
    for (const s of this.#states) {
      s.pending = s.bucket.names.length;
      s.done = undefined;
    }
  }
}
