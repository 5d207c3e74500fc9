/**
 * ZeRO (DeepSpeed's Zero Redundancy Optimizer) over a ParameterSet: stage 1 shards the
 * optimizer state, stage 2 also the gradients, stage 3 also the parameters; ZeRO++'s
 * quantized weights (qwZ), hierarchical partition (hpZ) and quantized gradients (qgZ) are
 * options of stage 3. Every rank holds a float32 master copy of its shard (see Partition) and
 * the optimizer's state for it only; the optimizer is the user's (AdamW, SGD) over that shard.
 *
 * A step, stages 1–2: write gradients into `zero.gradView(name)` (= `params.gradView(name)`)
 * and call `gradReady(name)` as each is done (stage 2 starts averaging full buckets then);
 * `await zero.step()` averages the rest, steps the shard and all-gathers the parameters back
 * into `params.data`.
 *
 * Stage 3: `params.data` is read once at creation (rank 0's, broadcast) and then left alone;
 * a layer's parameters exist only between `await zero.gather(names)` and `release(names)`
 * (or inside `withGathered`), as `zero.view(name)`. Gradients go to `zero.gradView(name)`,
 * a buffer of the layer's own that `gradReady` averages and frees once the layer is complete.
 */
import type { Communicator } from '../../index';
import { allocate, copyBuffer, fromHost, release, view, type Float32Buffer } from '../buffers';
import { checkSameLayout } from '../ddp/layout-check';
import { TrainingError, TrainingErrorCode, argRangeError, argTypeError } from '../errors';
import { Optimizer, type OptimizerState } from '../optim';
import { ParameterSet } from '../params';
import { FlatShards } from './flat-shards';
import { LayerGradients } from './layer-gradients';
import { resolveZeroOptions, type ResolvedZeroOptions, type ZeroOptions } from './options';
import { layersByPrefix, Partition, type PartitionUnit } from './partition';
import { LayerGathers, type GatherCounters } from './stage3';
import { discoverTopology, makeGroups, type Topology, type ZeroGroups } from './topology';

/** Bytes held by this rank, from the sizes of the buffers themselves. */
export interface ZeroMemory {
  /** The optimizer's state buffers (AdamW: exp_avg and exp_avg_sq over the shard). */
  optimizerState: number;
  /** The float32 master copy of the shard. */
  master: number;
  /** The averaged gradients kept for the step: the gradient shard. */
  gradientShard: number;
  /** Stages 1–2: the full parameters (params.data). Stage 3: the persistent layers, kept whole. */
  parameters: number;
  /** Stage 3: layers gathered now (gather windows and prefetches). */
  gathered: number;
  /** Stage 3 with hpZ: the secondary pieces kept from this step's forward gathers. */
  secondary: number;
  /** Stage 3: layer gradient buffers not yet averaged. */
  layerGradients: number;
}

export class Zero {
  readonly comm: Communicator;
  readonly params: ParameterSet;
  readonly stage: 1 | 2 | 3;
  readonly partition: Partition;
  /** This rank's shard: `data` the float32 master, `grad` the averaged gradients. */
  readonly shard: ParameterSet;
  readonly optimizer: Optimizer;
  readonly topology: Topology;
  /** The communicators ZeRO++ split off the world (null where not needed). */
  readonly groups: Readonly<ZeroGroups>;
  readonly options: Readonly<ResolvedZeroOptions>;
  readonly #flat: FlatShards | undefined;
  readonly #gathers: LayerGathers | undefined;
  readonly #grads: LayerGradients | undefined;
  readonly #ready = new Set<string>();
  readonly #layerPending = new Map<PartitionUnit, number>();
  readonly #reductions: Promise<void>[] = [];
  #freed = false;
  #nextLayer: number;

  private constructor(comm: Communicator, params: ParameterSet, o: ResolvedZeroOptions, partition: Partition, topology: Topology, groups: ZeroGroups) {
    this.comm = comm;
    this.params = params;
    this.stage = o.stage;
    this.options = Object.freeze({ ...o });
    this.partition = partition;
    this.topology = topology;
    this.groups = Object.freeze(groups);
    this.shard = new ParameterSet([{ name: 'shard', shape: [partition.shardLength] }], params.device === undefined ? undefined : { device: params.device });
    const optimizer = o.optimizer(this.shard);
    if (!(optimizer instanceof Optimizer) || optimizer.params !== this.shard) {
      this.shard.free();
      throw argTypeError('options.optimizer', 'a function returning an optimizer over the shard it is given', optimizer);
    }
    this.optimizer = optimizer;
    this.#nextLayer = partition.units.length - 1;
    if (o.stage === 3) {
      this.#gathers = new LayerGathers(partition, this.shard.data, {
        world: comm, hpz: groups.hpz, device: params.device, weightFormat: o.quantizedWeights, blockSize: o.blockSize, prefetchBucketSize: o.prefetchBucketSize,
      });
      this.#grads = new LayerGradients(this.shard.grad, {
        world: comm, intra: groups.intra, inter: groups.inter, device: params.device, gradientFormat: o.quantizedGradients, blockSize: o.blockSize,
      });
      for (const u of partition.units) this.#layerPending.set(u, u.names.length);
    } else {
      this.#flat = new FlatShards(comm, params, this.shard, { stage: o.stage, overlapComm: o.overlapComm, reduceBucketSize: o.reduceBucketSize, allgatherBucketSize: o.allgatherBucketSize });
    }
  }

  /**
   * Checks the options, compares the ranks' layouts, broadcasts rank 0's parameters (unless
   * `broadcastParameters: false`), splits the communicators ZeRO++ needs and copies this
   * rank's shard into its master. Every rank calls it with the same options.
   */
  static async create(comm: Communicator, params: ParameterSet, options: ZeroOptions): Promise<Zero> {
    if (comm === null || typeof comm !== 'object' || typeof (comm as Communicator).allGather !== 'function') throw argTypeError('comm', 'a Communicator', comm);
    if (!(params instanceof ParameterSet)) throw argTypeError('params', 'a ParameterSet', params);
    const o = resolveZeroOptions(options, comm.size);
    const block = o.quantizedWeights !== undefined || o.quantizedGradients !== undefined ? o.blockSize : 1;
    const partition = o.stage === 3
      ? Partition.layered(params, comm.size, o.layers ?? layersByPrefix(params), block, o.paramPersistenceThreshold)
      : Partition.contiguous(params, comm.size);
    await checkSameLayout(comm, params, 'Zero');
    const topology = await discoverTopology(comm);
    const groups = await makeGroups(comm, topology, o);
    if (o.broadcastParameters) await comm.broadcast(params.data, { root: 0 });
    const zero = new Zero(comm, params, o, partition, topology, groups);
    zero.#loadMasterFrom(params.data);
    if (zero.#gathers !== undefined) await zero.#gathers.refreshPersistent();
    return zero;
  }

  /** Copies this rank's pieces of a full flat buffer (params' layout) into the master. */
  #loadMasterFrom(full: Float32Buffer): void {
    const rank = this.comm.rank;
    for (const u of this.partition.units) {
      const a = Math.min(u.size, rank * u.piece);
      const b = Math.min(u.size, (rank + 1) * u.piece);
      const piece = view(this.shard.data, u.shardOffset, u.shardOffset + u.piece);
      piece.fill(0);
      if (a < b) copyBuffer(view(full, u.begin + a, u.begin + b), view(piece, 0, b - a));
    }
  }

  /** The parameters of `name`: params' view (stages 1–2), the gathered layer's (stage 3, inside a gather window). */
  view(name: string): Float32Buffer {
    this.#live('view');
    if (this.#gathers === undefined) return this.params.view(name);
    const u = this.partition.unitOf(name);
    const t = this.params.get(name);
    const b = this.#gathers.buffer(u, 'view');
    return view(b, t.offset - u.begin, t.offset - u.begin + t.size);
  }

  /** Where to write `name`'s gradient for this step. */
  gradView(name: string): Float32Buffer {
    this.#live('gradView');
    if (this.#grads === undefined) return this.params.gradView(name);
    const u = this.partition.unitOf(name);
    if (this.#ready.has(name)) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `gradView: the gradient of ${JSON.stringify(name)} was already marked ready in this step`);
    const t = this.params.get(name);
    return view(this.#grads.buffer(u), t.offset - u.begin, t.offset - u.begin + t.size);
  }

  /** Zeroes the gradients the backward pass accumulates into (stage 3's layer buffers start at zero anyway). */
  zeroGrad(): void {
    this.#live('zeroGrad');
    if (this.#flat !== undefined) this.params.zeroGrad();
  }

  /** Marks `name`'s gradient as written; a full bucket (stage 2) or layer (stage 3) starts averaging. */
  gradReady(name: string): void {
    this.#live('gradReady');
    const u = this.partition.unitOf(name);
    if (this.#ready.has(name)) throw argRangeError('name', 'a gradient not yet marked ready in this step', name);
    this.#ready.add(name);
    if (this.#flat !== undefined) {
      this.#flat.gradReady(name);
      return;
    }
    this.#layerPending.set(u, this.#layerPending.get(u)! - 1);
    if (this.options.overlapComm) this.#launchLayers();
  }

  /**
   * Starts the reductions of complete layers, last layer first: a layer that completes early
   * waits for the ones after it, so every rank issues the reduce-scatters in one order
   * whatever order its gradients arrive in (DataParallel's rule for buckets).
   */
  #launchLayers(): void {
    const units = this.partition.units;
    while (this.#nextLayer >= 0 && this.#layerPending.get(units[this.#nextLayer]) === 0) this.#reduceLayer(units[this.#nextLayer--]);
  }

  /** Marks every gradient not yet marked, last tensor first. */
  gradsReady(): void {
    this.#live('gradsReady');
    for (let i = this.params.tensors.length - 1; i >= 0; i--) {
      const n = this.params.tensors[i].name;
      if (!this.#ready.has(n)) this.gradReady(n);
    }
  }

  /**
   * Stage 3: gathers the layers holding `names` (resolves when `view(name)` is usable) and
   * starts the all-gathers of the next layers (`prefetchBucketSize` elements ahead: the
   * following layers in the forward pass, the preceding ones in the backward pass).
   */
  async gather(names: readonly string[]): Promise<void> {
    this.#live('gather');
    await this.#stage3('gather').gather(this.#units(names));
  }

  /** Stage 3: ends the gather window of the layers holding `names`; a layer no window holds is freed. */
  release(names: readonly string[]): void {
    this.#live('release');
    this.#stage3('release').release(this.#units(names));
  }

  /** Stage 3: `fn` inside a gather window of `names` (released even when fn throws). */
  async withGathered<T>(names: readonly string[], fn: () => T | Promise<T>): Promise<T> {
    this.#live('withGathered');
    await this.gather(names);
    try {
      return await fn();
    } finally {
      this.release(names);
    }
  }

  /** Stage 3: where a layer's parameters are: 'released', 'prefetching' (gather issued ahead of its request) or 'gathered'. */
  gatherStatus(name: string): 'released' | 'prefetching' | 'gathered' {
    return this.#stage3('gatherStatus').status(this.partition.unitOf(name));
  }

  /** Stage 3: the gathers issued so far (world, inside the hpZ group, ahead of request). */
  get gatherCounters(): Readonly<GatherCounters> {
    return { ...this.#stage3('gatherCounters').counters };
  }

  /**
   * Averages the gradients not yet averaged, steps the optimizer over the shard and makes the
   * new parameters available: all-gathered into params.data (stages 1–2), or in the master
   * and the persistent layers (stage 3). A gradient never marked ready is GRADIENT_NOT_READY
   * naming it, after the averages every rank issues have run (so no rank hangs), with nothing stepped.
   */
  async step(): Promise<void> {
    this.#live('step');
    const missing = this.params.tensors.filter((t) => !this.#ready.has(t.name)).map((t) => t.name);
    if (this.#gathers !== undefined) {
      const held = this.#gathers.held();
      if (held.length > 0) {
        throw new TrainingError(TrainingErrorCode.INVALID_STATE, `step: layers still gathered: ${held.map((u) => JSON.stringify(u.names.join(', '))).join('; ')} (release them first)`);
      }
    }
    try {
      if (this.#flat !== undefined) {
        await this.#flat.reduce();
      } else {
        // Whatever is left goes now, in the same order on every rank (a missing gradient as zeros).
        for (const u of this.partition.units) this.#layerPending.set(u, 0);
        this.#launchLayers();
        const all = this.#reductions.splice(0);
        for (const r of all) await r;
        await this.#gathers!.endStep();
      }
    } finally {
      this.#ready.clear();
      for (const u of this.partition.units) this.#layerPending.set(u, u.names.length);
      this.#nextLayer = this.partition.units.length - 1;
    }
    if (missing.length > 0) {
      const shown = missing.slice(0, 8).map((n) => JSON.stringify(n)).join(', ');
      throw new TrainingError(TrainingErrorCode.GRADIENT_NOT_READY, `step on rank ${this.comm.rank}: ${missing.length} gradient(s) never marked ready: ${shown}${missing.length > 8 ? ', …' : ''}`);
    }
    this.optimizer.step();
    await this.#publish();
  }

  /** After a change of the master: the parameters the model reads. */
  async #publish(): Promise<void> {
    if (this.#flat !== undefined) await this.#flat.gather();
    else await this.#gathers!.refreshPersistent();
  }

  /**
   * Every parameter in full, float32, in params' layout, written into `target` (default
   * params.data): an all-gather of the master whatever the options (no quantization). For
   * evaluation, export and tools; stage 3 needs the whole model's memory for it.
   */
  async gatherAll(target: Float32Buffer = this.params.data): Promise<void> {
    this.#live('gatherAll');
    if (target.length !== this.params.length) throw argRangeError('target', `a buffer of ${this.params.length} elements`, target.length);
    if (this.#flat !== undefined) {
      if (target !== this.params.data) copyBuffer(this.params.data, target);
      return;
    }
    for (const u of this.partition.units) {
      const full = allocate(u.padded, this.params.device);
      try {
        await this.comm.allGather(view(this.shard.data, u.shardOffset, u.shardOffset + u.piece), full);
        copyBuffer(view(full, 0, u.size), view(target, u.begin, u.begin + u.size));
      } finally {
        release(full);
      }
    }
  }

  /**
   * Replaces this rank's master shard and optimizer state (host copies over the shard, as a
   * checkpoint load produces them after resharding), then republishes the parameters.
   * Collective: every rank calls it.
   */
  async loadShard(master: Float32Array, state: OptimizerState): Promise<void> {
    this.#live('loadShard');
    if (!(master instanceof Float32Array) || master.length !== this.shard.length) throw argRangeError('master', `a Float32Array of ${this.shard.length} elements`, master);
    this.optimizer.loadState(state);
    fromHost(master, this.shard.data);
    await this.#publish();
  }

  /** Bytes this rank holds, by kind, from the buffers' sizes (see ZeroMemory); cheap enough to call inside a step. */
  memory(): ZeroMemory {
    // Each state buffer covers the shard (Optimizer's rule), so this needs no copy of them.
    const optimizerState = this.optimizer.stateNames().length * (this.optimizer.range.end - this.optimizer.range.begin) * 4;
    const g = this.#gathers?.bytes() ?? { gathered: 0, persistent: 0, secondary: 0 };
    return {
      optimizerState,
      master: this.shard.data.byteLength,
      gradientShard: this.shard.grad.byteLength,
      parameters: this.#flat !== undefined ? this.params.data.byteLength : g.persistent,
      gathered: g.gathered,
      secondary: g.secondary,
      layerGradients: this.#grads?.bytes() ?? 0,
    };
  }

  /** Releases device memory (shard, optimizer state, layer buffers) and ZeRO++'s communicators. */
  async free(): Promise<void> {
    if (this.#freed) return;
    this.#freed = true;
    // Reductions in flight write into the layer buffers released below.
    await Promise.allSettled(this.#reductions.splice(0));
    this.#gathers?.free();
    this.#grads?.free();
    this.optimizer.free();
    this.shard.free();
    const seen = new Set<Communicator>();
    for (const c of [this.groups.intra, this.groups.inter, this.groups.hpz]) {
      if (c !== null && !seen.has(c)) {
        seen.add(c);
        await c.destroy();
      }
    }
  }

  #live(what: string): void {
    if (this.#freed) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `Zero.${what}: called after free()`);
  }

  #reduceLayer(u: PartitionUnit): void {
    const r = this.#grads!.reduce(u);
    r.catch(() => {});
    this.#reductions.push(r);
  }

  #units(names: readonly string[]): PartitionUnit[] {
    if (!Array.isArray(names)) throw argTypeError('names', 'an array of tensor names', names);
    const out: PartitionUnit[] = [];
    for (const n of names) {
      const u = this.partition.unitOf(n);
      if (!out.includes(u)) out.push(u);
    }
    return out;
  }

  #stage3(what: string): LayerGathers {
    if (this.#gathers === undefined) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `${what}: parameters are gathered in stage 3 only (this is stage ${this.stage}; they are in params.data)`);
    return this.#gathers;
  }
}
