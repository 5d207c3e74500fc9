/**
 * Data parallelism that outlives its workers (torchft's per-step fault tolerance): every step
 * averages the gradients of the current generation's workers, and a step whose average fails is
 * dropped and retried over the next generation.
 *
 * What is kept: the parameters, the optimizer's state and the step count. The optimizer is made
 * once, by the `optimizer` factory, and lives across generations; each new generation takes the
 * state of its most advanced member (the most steps applied, ties: the lowest rank) by broadcast,
 * so the parameters stay bit-identical on every live worker. This is torchft's should_commit: a
 * step counts only where its all-reduce completed. An all-reduce can complete on some ranks and
 * fail on others; the ranks that applied the step then roll the others forward, rather than the
 * job holding two versions of the model.
 *
 * What is lost when a worker dies: the gradient of the step in flight (on every worker that had
 * not applied it yet). `step()` returns false for it and the caller computes that step's gradient
 * again, over the survivors' new data shards, and calls `step()` once more. A worker that joins
 * (new, restarted, or one that was taken for gone) is admitted at a step boundary, never into a
 * step, and receives the parameters, the optimizer state and the step count.
 *
 * No bucket overlap in elastic mode: each step is one all-reduce over a gradient buffer that
 * belongs to the current generation. A collective aborted after a failure may still be written by
 * the engine's thread until its own timeout, so a buffer handed to a failed generation is never
 * used again; with buckets in flight during the backward pass that would mean the user's gradient
 * views, which cannot be given up. One all-reduce per step is also the unit that can be dropped and
 * retried as a whole. The cost is one copy of the gradients in and out per step (DataParallel,
 * with its buckets, is the non-elastic path).
 */
import { createHash } from 'node:crypto';
import { type Communicator, DeviceBuffer } from '../../index';
import { allocate, copyBuffer, fromHost, release, toHost, type Float32Buffer } from '../buffers';
import { checkSameLayout } from '../ddp/layout-check';
import { argRangeError, argTypeError, checkKeys, TrainingError, TrainingErrorCode } from '../errors';
import type { Optimizer, OptimizerState } from '../optim';
import type { ParameterSet } from '../params';
import type { Elastic } from './membership';
import { mostAdvanced } from './source';

export interface ElasticDataParallelOptions {
  /** Makes the optimizer, once (its state is what a joiner receives). Required. */
  optimizer: (params: ParameterSet) => Optimizer;
  /** Broadcast rank 0's parameters in the first generation (default true, as torch DDP). */
  broadcastParameters?: boolean;
}

const KEYS = ['optimizer', 'broadcastParameters'];

/** What each member says of itself when a generation shares its state. */
interface Standing {
  /** Holds the job's state (false for a joiner that has not received it). */
  has: boolean;
  steps: number;
  /** The optimizer's kind, range and state names, which every member must share. */
  optimizer: string;
}

/** What the source broadcasts before the buffers. */
interface Head {
  steps: number;
  contributors: string[];
  optimizer: { step: number; options: Record<string, number | boolean>; range: { begin: number; end: number }; names: string[] };
}

/** dst = src bit for bit (-0 stays -0): the parameters of every member must hash the same. */
function copyExact(src: Float32Buffer, dst: Float32Buffer): void {
  if (dst instanceof DeviceBuffer || src instanceof DeviceBuffer) fromHost(toHost(src), dst);
  else dst.set(src);
}

/** dst = src, for the gradients (a device copy goes through ops; -0 may become +0, which steps alike). */
function copyGrad(src: Float32Buffer, dst: Float32Buffer): void {
  if (dst instanceof DeviceBuffer || src instanceof DeviceBuffer) copyBuffer(src, dst);
  else dst.set(src);
}

function describeOptimizer(o: Optimizer): string {
  const names = o.stateNames();
  return `${o.kind} over [${o.range.begin}, ${o.range.end}) (${names.length === 0 ? 'no state buffers' : names.join(', ')})`;
}

export class ElasticDataParallel {
  readonly elastic: Elastic;
  readonly params: ParameterSet;
  readonly #optimizer: Optimizer;
  readonly #broadcastParameters: boolean;
  #steps = 0;
  /** This worker holds the job's state (it started with the job, or received the state). */
  #has = false;
  /** The current generation's gradient buffer; undefined between a failure and the next share. */
  #grad: Float32Buffer | undefined;
  /** Device buffers handed to failed generations: released only by free(). */
  readonly #retired: Float32Buffer[] = [];
  #contributors: readonly string[] = [];
  #freed = false;

  private constructor(elastic: Elastic, params: ParameterSet, optimizer: Optimizer, broadcastParameters: boolean) {
    this.elastic = elastic;
    this.params = params;
    this.#optimizer = optimizer;
    this.#broadcastParameters = broadcastParameters;
  }

  /**
   * Starts over the current generation. In the first generation the ranks' layouts are compared
   * and rank 0's parameters broadcast (unless `broadcastParameters: false`); a worker that joined
   * a running job receives the state from the others, who are in their own `step()` then.
   */
  static async create(elastic: Elastic, params: ParameterSet, options: ElasticDataParallelOptions): Promise<ElasticDataParallel> {
    if (elastic === null || typeof elastic !== 'object' || typeof (elastic as Elastic).reform !== 'function') throw argTypeError('elastic', 'an Elastic (from Elastic.join())', elastic);
    if (params === null || typeof params !== 'object' || !Array.isArray((params as ParameterSet).tensors)) throw argTypeError('params', 'a ParameterSet', params);
    if (options === undefined) throw argTypeError('options', 'an options object with optimizer', options);
    const o = checkKeys<ElasticDataParallelOptions>('options', options, KEYS);
    if (typeof o.optimizer !== 'function') throw argTypeError('options.optimizer', 'a function (params) => Optimizer', o.optimizer);
    if (o.broadcastParameters !== undefined && typeof o.broadcastParameters !== 'boolean') throw argTypeError('options.broadcastParameters', 'a boolean', o.broadcastParameters);
    const optimizer = o.optimizer(params);
    if (optimizer === null || typeof optimizer !== 'object' || typeof (optimizer as Optimizer).loadState !== 'function' || typeof (optimizer as Optimizer).step !== 'function') {
      throw argTypeError('options.optimizer(params)', 'an Optimizer (AdamW, SGD)', optimizer);
    }
    if (optimizer.params !== params) throw argRangeError('options.optimizer(params)', 'an optimizer over the ParameterSet given to create()', optimizer);
    const e = new ElasticDataParallel(elastic, params, optimizer, o.broadcastParameters !== false);
    await e.#begin();
    return e;
  }

  /** The current generation's communicator (rank and size give this worker's data shard). */
  get comm(): Communicator {
    return this.elastic.comm;
  }

  /** Steps the job has applied; it can jump forward at a generation change (drive the loop by it). */
  get steps(): number {
    return this.#steps;
  }

  get optimizer(): Optimizer {
    return this.#optimizer;
  }

  /** The workers whose gradients the last applied step averaged (ids), in rank order. */
  get lastContributors(): readonly string[] {
    return this.#contributors;
  }

  /** SHA-256 (hex) of the parameters' bytes: the same on every live worker after every step. */
  paramsHash(): string {
    const host = toHost(this.params.data);
    return createHash('sha256').update(new Uint8Array(host.buffer, host.byteOffset, host.byteLength)).digest('hex');
  }

  /**
   * Averages `params.grad` over the current generation's workers and applies the optimizer step;
   * then admits waiting workers, if any. True when the step was applied. False when it was dropped
   * (a worker was lost during the average): the job has moved to the next generation, and the
   * caller computes the gradient of step `steps + 1` again and calls step() once more. `steps`
   * may have moved forward meanwhile, if a member had applied the step before the failure.
   * Errors other than a lost generation are thrown.
   */
  async step(): Promise<boolean> {
    this.#live('step');
    let applied = false;
    try {
      const comm = this.elastic.comm;
      const buf = this.#grad ?? (this.#grad = allocate(this.params.length, this.params.device));
      copyGrad(this.params.grad, buf);
      await comm.allReduce(buf, { op: 'avg' }).wait();
      copyGrad(buf, this.params.grad);
      this.#optimizer.step();
      this.#steps++;
      applied = true;
      this.#contributors = Object.freeze([...this.elastic.record.members]);
      this.elastic.healthy();
      if (await this.elastic.joinsPending()) {
        await this.elastic.admit();
        await this.#share();
      }
    } catch (err) {
      if (!this.elastic.isFailure(err)) throw err;
      this.#retire();
      await this.#recover(err);
    }
    return applied;
  }

  /** Releases the gradient buffers and the optimizer's state buffers; the Elastic stays the caller's to close. */
  async free(): Promise<void> {
    if (this.#freed) return;
    this.#freed = true;
    if (this.#grad !== undefined) release(this.#grad);
    this.#grad = undefined;
    for (const b of this.#retired.splice(0)) release(b);
    this.#optimizer.free();
  }

  #live(what: string): void {
    if (this.#freed) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `ElasticDataParallel.${what}: called after free()`);
  }

  async #begin(): Promise<void> {
    try {
      if (this.elastic.needsState) await this.#share();
      else {
        await this.#firstGeneration(this.elastic.comm, true);
        this.elastic.healthy();
      }
    } catch (err) {
      if (!this.elastic.isFailure(err)) throw err;
      this.#retire();
      await this.#recover(err);
    }
  }

  /** Layouts compared (unless the caller did), rank 0's parameters broadcast; this worker then holds the state. */
  async #firstGeneration(comm: Communicator, compare: boolean): Promise<void> {
    if (compare) await checkSameLayout(comm, this.params, 'ElasticDataParallel');
    if (this.#broadcastParameters) {
      // Received into a buffer of this attempt: a broadcast aborted by a failure may still be written later.
      const into = comm.rank === 0 ? this.params.data : allocate(this.params.length, this.params.device);
      await this.#receive(comm.broadcast(into, { root: 0 }).wait(), into);
      if (into !== this.params.data) {
        copyExact(into, this.params.data);
        release(into);
      }
    }
    this.#has = true;
    this.#newBuffer();
  }

  /** Forms generations until one has taken over the state. */
  async #recover(cause: unknown): Promise<void> {
    for (;;) {
      await this.elastic.reform(cause);
      try {
        await this.#share();
        return;
      } catch (err) {
        if (!this.elastic.isFailure(err)) throw err;
        this.#retire();
        cause = err;
      }
    }
  }

  /**
   * Run by every member of a new generation: the state of the member with the most steps (ties:
   * the lowest rank) broadcast to all — parameters, optimizer state, step count and whom its last
   * step averaged. A member that applied a step its peers dropped so rolls them forward. Nothing
   * is written until everything has arrived, so a share that fails leaves this worker's state
   * whole for the next one.
   */
  async #share(): Promise<void> {
    const comm = this.elastic.comm;
    await checkSameLayout(comm, this.params, 'ElasticDataParallel');
    // A worker taken for gone and admitted again may have diverged: it receives, as a new one does.
    const me: Standing = { has: this.#has && !this.elastic.needsState, steps: this.#steps, optimizer: describeOptimizer(this.#optimizer) };
    const all = await comm.allGatherObject({ ...me });
    const other = all.findIndex((s) => s.optimizer !== all[0].optimizer);
    if (other >= 0) {
      throw new TrainingError(
        TrainingErrorCode.LAYOUT_MISMATCH,
        `ElasticDataParallel on rank ${comm.rank}: the ranks' optimizers differ: rank 0 has ${all[0].optimizer}, rank ${other} has ${all[other].optimizer}`,
      );
    }
    const source = mostAdvanced(all, (a, b) => a.steps > b.steps);
    if (source < 0) {
      // Nobody holds the state yet (the first generation failed while starting): start over.
      await this.#firstGeneration(comm, false);
    } else {
      const isSource = comm.rank === source;
      const mine = isSource ? this.#optimizer.state() : undefined;
      const sent: Head | null = isSource
        ? { steps: this.#steps, contributors: [...this.#contributors], optimizer: { step: mine!.step, options: mine!.options, range: { ...mine!.range }, names: Object.keys(mine!.tensors) } }
        : null;
      const head = (await comm.broadcastObject(sent as never, { root: source })) as unknown as Head;
      const data = isSource ? this.params.data : allocate(this.params.length, this.params.device);
      await this.#receive(comm.broadcast(data, { root: source }).wait(), data);
      const length = head.optimizer.range.end - head.optimizer.range.begin;
      const tensors: Record<string, Float32Array> = {};
      for (const name of head.optimizer.names) {
        const t = isSource ? mine!.tensors[name] : new Float32Array(length);
        await comm.broadcast(t, { root: source }).wait();
        tensors[name] = t;
      }
      if (!isSource) {
        const state: OptimizerState = { step: head.optimizer.step, options: head.optimizer.options, range: head.optimizer.range, tensors };
        this.#optimizer.loadState(state);
        copyExact(data, this.params.data);
        release(data);
        this.#steps = head.steps;
        this.#contributors = Object.freeze(head.contributors);
      }
      this.#has = true;
      this.#newBuffer();
    }
    this.elastic.stateReceived();
    this.elastic.healthy();
  }

  /** Awaits a receive into `into`; if it fails, `into` is given up with its generation. */
  async #receive(done: Promise<unknown>, into: Float32Buffer): Promise<void> {
    try {
      await done;
    } catch (err) {
      if (into !== this.params.data && into instanceof DeviceBuffer) this.#retired.push(into);
      throw err;
    }
  }

  /** The gradient buffer of the generation that just formed (the previous one ended cleanly, or was retired). */
  #newBuffer(): void {
    if (this.#grad !== undefined) release(this.#grad);
    this.#grad = allocate(this.params.length, this.params.device);
  }

  /** Gives up the current gradient buffer: the failed generation's engine may still write it. */
  #retire(): void {
    const b = this.#grad;
    this.#grad = undefined;
    if (b instanceof DeviceBuffer) this.#retired.push(b);
  }
}
