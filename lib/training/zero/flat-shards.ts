/**
 * Stages 1 and 2 over the contiguous partition: the backward pass writes into the full
 * `params.grad`, and the averaged gradients of this rank's range land in the gradient shard.
 *
 * Stage 1 averages all of it at the step with one reduce-scatter. Stage 2 averages it in
 * buckets (torch DDP's reverse-order assignment, `reduceBucketSize` elements) as each bucket's
 * gradients are ready, overlapping the rest of the backward pass. A bucket spans the ranges
 * of one or more ranks; each rank's part of it is reduced to that rank (DeepSpeed's stage 2
 * reduces to the owner the same way), so the ranks together send each gradient element once
 * less than N times: (N − 1)/N of the gradient bytes, as a reduce-scatter.
 *
 * After the step every rank's updated range is all-gathered back into `params.data`, in
 * pieces of `allgatherBucketSize` elements per rank.
 */
import type { Communicator } from '../../index';
import { allocate, copyBuffer, release, view } from '../buffers';
import { assignBuckets, type Bucket } from '../ddp';
import type { ParameterSet } from '../params';

export class FlatShards {
  readonly buckets: readonly Bucket[];
  readonly #comm: Communicator;
  readonly #params: ParameterSet;
  readonly #shard: ParameterSet;
  readonly #stage: 1 | 2;
  readonly #overlap: boolean;
  readonly #gatherBucket: number;
  readonly #pending: number[];
  readonly #bucketOf = new Map<string, number>();
  readonly #done: (Promise<void> | undefined)[];
  #next = 0;

  constructor(comm: Communicator, params: ParameterSet, shard: ParameterSet, o: { stage: 1 | 2; overlapComm: boolean; reduceBucketSize: number; allgatherBucketSize: number }) {
    this.#comm = comm;
    this.#params = params;
    this.#shard = shard;
    this.#stage = o.stage;
    this.#overlap = o.overlapComm;
    this.#gatherBucket = o.allgatherBucketSize;
    const caps = { capBytes: o.reduceBucketSize * 4, firstCapBytes: o.reduceBucketSize * 4 };
    const buckets = o.stage === 2 ? assignBuckets(params.tensors, caps) : [];
    // The first bucket (the last tensors) also takes the padding, so the buckets cover every rank's range.
    if (buckets.length > 0) buckets[0] = Object.freeze({ ...buckets[0], end: params.length });
    this.buckets = Object.freeze(buckets);
    for (const b of this.buckets) for (const n of b.names) this.#bucketOf.set(n, b.index);
    this.#pending = this.buckets.map((b) => b.names.length);
    this.#done = this.buckets.map(() => undefined);
  }

  /** Stage 2: counts `name` ready, starting its bucket's reduction once full (in bucket order). */
  gradReady(name: string): void {
    if (this.#stage !== 2) return;
    const i = this.#bucketOf.get(name)!;
    this.#pending[i]--;
    if (this.#overlap) this.#launchReady();
  }

  /** Averages whatever is left and waits: the gradient shard then holds the averaged gradients. */
  async reduce(): Promise<void> {
    if (this.#stage === 1) {
      await this.#comm.reduceScatter(this.#params.grad, this.#shard.grad, { op: 'avg' });
      return;
    }
    this.#pending.fill(0);
    this.#launchReady();
    try {
      for (const d of this.#done) await d;
    } finally {
      this.#next = 0;
      this.buckets.forEach((b, i) => {
        this.#pending[i] = b.names.length;
        this.#done[i] = undefined;
      });
    }
  }

  /** All-gathers every rank's range of the master into `params.data`. */
  async gather(): Promise<void> {
    const { size } = this.#comm;
    const shardLength = this.#shard.length;
    if (this.#gatherBucket >= shardLength) {
      await this.#comm.allGather(this.#shard.data, this.#params.data);
      return;
    }
    const w = this.#gatherBucket;
    const staging = allocate(w * size, this.#params.device);
    try {
      for (let a = 0; a < shardLength; a += w) {
        const n = Math.min(w, shardLength - a);
        const out = n === w ? staging : view(staging, 0, n * size);
        await this.#comm.allGather(view(this.#shard.data, a, a + n), out);
        for (let r = 0; r < size; r++) copyBuffer(view(out, r * n, (r + 1) * n), view(this.#params.data, r * shardLength + a, r * shardLength + a + n));
      }
    } finally {
      release(staging);
    }
  }

  #launchReady(): void {
    while (this.#next < this.buckets.length && this.#pending[this.#next] === 0) {
      const b = this.buckets[this.#next++];
      const d = this.#reduceBucket(b);
      d.catch(() => {});
      this.#done[b.index] = d;
    }
  }

  /** Each rank's part of the bucket, reduced (averaged) onto that rank's gradient shard. */
  async #reduceBucket(b: Bucket): Promise<void> {
    const { rank, size } = this.#comm;
    const s = this.#shard.length;
    const works: Promise<unknown>[] = [];
    for (let r = 0; r < size; r++) {
      const begin = Math.max(b.begin, r * s);
      const end = Math.min(b.end, (r + 1) * s);
      if (begin >= end) continue;
      const input = view(this.#params.grad, begin, end);
      const options = rank === r ? { root: r, op: 'avg' as const, output: view(this.#shard.grad, begin - r * s, end - r * s) } : { root: r, op: 'avg' as const };
      works.push(this.#comm.reduce(input, options).wait());
    }
    await Promise.all(works);
  }
}
