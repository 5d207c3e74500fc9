import { createHash } from 'node:crypto';
import { type Communicator, DeviceBuffer, errorFeedbackLength } from '../../index';
import { axpy, scale } from '../../ops';
import { allocate, copyBuffer, release, toHost, view, type Float32Buffer } from '../buffers';
import { argTypeError, TrainingError, TrainingErrorCode } from '../errors';
import { checkSameLayout } from '../ddp/layout-check';
import type { Optimizer } from '../optim/optimizer';
import type { ParameterSet } from '../params';
import { outerStep, tentativeOuterStep } from './outer-step';
import { resolveOptions, type DiLoCoOptions, type ResolvedOptions } from './options';
import { FragmentSchedule } from './schedule';
import { checkStateFits, STATE_FORMAT, type DiLoCoState } from './state';

/** A fragment: elements [begin, end) of the flat parameters, synchronized together. */
export interface Fragment {
  readonly index: number;
  readonly begin: number;
  readonly end: number;
}

/** A round started and not yet applied. */
interface Pending {
  /** The fragment's round number (1, 2, …). */
  readonly round: number;
  /** Resolves when the fragment's `delta` holds the average. */
  readonly done: Promise<void>;
  landed: boolean;
}

interface Views {
  local: Float32Buffer;
  global: Float32Buffer;
  momentum: Float32Buffer;
  delta: Float32Buffer;
  spare: Float32Buffer | undefined;
  residual: Float32Buffer | undefined;
}

/**
 * DiLoCo's outer loop over a ParameterSet (Douillard et al.; torchft's `DiLoCo`): the user runs
 * the inner optimizer on `params` and calls `await diloco.step()` after each inner step; the
 * schedule (schedule.ts) says when each fragment's pseudo-gradient Δ = θ_global − θ_local is
 * averaged over the ranks and when the averaged Δ takes the outer step on θ_global.
 *
 * θ_global changes only by outer steps on averaged bytes, which are the same on every rank, so
 * every rank holds the same θ_global bit for bit (checked by hash with `checkState`). The
 * all-reduces run on the communicator's thread: `step()` waits only at a `land` whose average
 * has not arrived yet.
 *
 * The outer state — θ_global, the momentum buffer, the averaged Δ of rounds not yet applied,
 * the counters (shared by every rank), and each rank's error-feedback residuals and eager
 * estimates — is one object, `state()`, that `loadState()` restores (see state.ts).
 */
export class DiLoCo {
  readonly comm: Communicator;
  readonly params: ParameterSet;
  readonly innerOptimizer: Optimizer | undefined;
  readonly options: Readonly<ResolvedOptions>;
  readonly schedule: FragmentSchedule;
  readonly fragments: readonly Fragment[];
  readonly #global: Float32Buffer;
  readonly #momentum: Float32Buffer;
  readonly #delta: Float32Buffer;
  readonly #spare: Float32Buffer | undefined;
  readonly #views: Views[];
  readonly #pending: (Pending | undefined)[];
  /** Delayed mode: the new Δ was staged in `spare` by this step's land. */
  readonly #staged: boolean[];
  readonly #rounds: number[];
  readonly #applied: number[];
  #innerSteps = 0;
  /** What #launch scales this rank's pseudo-gradient by (elastic redo: n/c, or 0 for a rank with none). */
  #weight = 1;
  #busy = false;
  #freed = false;

  private constructor(comm: Communicator, params: ParameterSet, o: ResolvedOptions, innerOptimizer: Optimizer | undefined) {
    this.comm = comm;
    this.params = params;
    this.innerOptimizer = innerOptimizer;
    this.options = Object.freeze({ ...o, outer: Object.freeze({ ...o.outer }) });
    this.schedule = new FragmentSchedule(o);
    const P = o.fragments;
    const L = params.length;
    this.fragments = Object.freeze(Array.from({ length: P }, (_, f) => Object.freeze({ index: f, begin: Math.floor((f * L) / P), end: Math.floor(((f + 1) * L) / P) })));
    const device = params.device;
    const owned: Float32Buffer[] = [];
    const alloc = (n: number): Float32Buffer => {
      const b = allocate(n, device);
      owned.push(b);
      return b;
    };
    try {
      this.#global = alloc(L);
      this.#momentum = alloc(L);
      this.#delta = alloc(L);
      this.#spare = o.mode === 'sync' ? undefined : alloc(L);
      this.#views = this.fragments.map((f) => ({
        local: view(params.data, f.begin, f.end),
        global: view(this.#global, f.begin, f.end),
        momentum: view(this.#momentum, f.begin, f.end),
        delta: view(this.#delta, f.begin, f.end),
        spare: this.#spare === undefined ? undefined : view(this.#spare, f.begin, f.end),
        residual: o.quantize?.errorFeedback ? alloc(errorFeedbackLength('allReduce', f.end - f.begin, comm.size)) : undefined,
      }));
    } catch (e) {
      for (const b of owned) release(b);
      throw e;
    }
    copyBuffer(params.data, this.#global);
    this.#pending = this.fragments.map(() => undefined);
    this.#staged = this.fragments.map(() => false);
    this.#rounds = this.fragments.map(() => 0);
    this.#applied = this.fragments.map(() => 0);
  }

  /**
   * Checks the options, compares the parameter layouts and the options across ranks, and
   * broadcasts rank 0's parameters (unless `broadcastParameters: false`); θ_global starts as
   * those parameters.
   */
  static async create(comm: Communicator, params: ParameterSet, options: DiLoCoOptions): Promise<DiLoCo> {
    if (comm === null || typeof comm !== 'object' || typeof (comm as Communicator).allReduce !== 'function') throw argTypeError('comm', 'a Communicator', comm);
    if (params === null || typeof params !== 'object' || !Array.isArray((params as ParameterSet).tensors)) throw argTypeError('params', 'a ParameterSet', params);
    const o = resolveOptions(options, params.length);
    const inner = options.innerOptimizer;
    if (inner !== undefined && inner.params !== params) throw argTypeError('options.innerOptimizer', 'an optimizer over the ParameterSet given as params', 'an optimizer over another ParameterSet');
    await checkSameLayout(comm, params, 'DiLoCo');
    const { checkState: _, ...shared } = o;
    const all = await comm.allGatherObject(JSON.stringify(shared));
    const differs = all.findIndex((s) => s !== all[0]);
    if (differs >= 0) {
      throw new TrainingError(TrainingErrorCode.STATE_MISMATCH, `DiLoCo on rank ${comm.rank}: the ranks were given different options: rank 0 ${all[0]}, rank ${differs} ${all[differs]}`);
    }
    if (o.broadcastParameters) await comm.broadcast(params.data, { root: 0 });
    return new DiLoCo(comm, params, o, inner);
  }

  /** Inner steps counted by `step()`. */
  get innerSteps(): number {
    return this.#innerSteps;
  }

  /** All-reduces started, over all fragments (one per fragment per H steps). */
  get syncRounds(): number {
    return this.#rounds.reduce((a, b) => a + b, 0);
  }

  /** Outer steps applied, over all fragments. */
  get outerSteps(): number {
    return this.#applied.reduce((a, b) => a + b, 0);
  }

  /** θ_global (the same bytes on every rank). Read it; writing it breaks that. */
  get globalParams(): Float32Buffer {
    return this.#global;
  }

  /** The fragments whose round was started and not yet applied, in fragment order. */
  inFlight(): number[] {
    return this.#pending.flatMap((p, f) => (p === undefined ? [] : [f]));
  }

  /** SHA-256 (hex) of θ_global's bytes, or of fragment `fragment`'s part of them. */
  globalHash(fragment?: number): string {
    const b = fragment === undefined ? this.#global : this.#views[fragment].global;
    const host = toHost(b);
    return createHash('sha256').update(new Uint8Array(host.buffer, host.byteOffset, host.byteLength)).digest('hex');
  }

  /**
   * Call after each inner optimizer step: does what the schedule asks at this step — starts
   * rounds, and applies those due (waiting only for an average that has not arrived yet).
   */
  async step(): Promise<void> {
    this.#enter('step');
    try {
      const t = ++this.#innerSteps;
      for (const e of this.schedule.eventsAt(t)) {
        if (e.kind === 'launch') this.#launch(e.fragment);
        else await this.#land(e.fragment);
      }
    } finally {
      this.#busy = false;
    }
  }

  /** Waits until every all-reduce in flight has landed; applies nothing (state() does this first). */
  async settle(): Promise<void> {
    for (const p of this.#pending) {
      if (p === undefined) continue;
      await p.done;
      p.landed = true;
    }
  }

  /**
   * The outer state, as host copies (state.ts): waits for the all-reduces in flight first, so
   * that a round not yet applied is saved as its average, which every rank holds alike.
   */
  async state(): Promise<DiLoCoState> {
    this.#enter('state');
    try {
      await this.settle();
      const pending = this.#pending.flatMap((p, f) => (p === undefined ? [] : [{ fragment: f, round: p.round }]));
      return {
        meta: this.#meta(pending),
        shared: { global: toHost(this.#global), momentum: toHost(this.#momentum), delta: toHost(this.#delta) },
        local: {
          ...(this.#spare === undefined ? {} : { spare: toHost(this.#spare) }),
          residuals: this.#views.flatMap((v) => (v.residual === undefined ? [] : [toHost(v.residual)])),
        },
      };
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Restores `state()` of a DiLoCo with the same options over the same layout and world size.
   * Rounds that were pending are pending again, with their saved averages. Everything is
   * checked before anything is written: CHECKPOINT_INVALID naming what does not fit.
   */
  loadState(state: DiLoCoState): void {
    this.#enter('loadState');
    try {
      if (this.#pending.some((p) => p !== undefined && !p.landed)) {
        throw new TrainingError(TrainingErrorCode.INVALID_STATE, 'DiLoCo.loadState: rounds are in flight; await settle() first');
      }
      checkStateFits(state, this);
      const write = (src: Float32Array, dst: Float32Buffer): void => {
        if (dst instanceof DeviceBuffer) dst.copyFrom(src);
        else dst.set(src);
      };
      write(state.shared.global, this.#global);
      write(state.shared.momentum, this.#momentum);
      write(state.shared.delta, this.#delta);
      if (this.#spare !== undefined && state.local.spare !== undefined) write(state.local.spare, this.#spare);
      let k = 0;
      for (const v of this.#views) if (v.residual !== undefined) write(state.local.residuals[k++], v.residual);
      const m = state.meta;
      this.#innerSteps = m.innerSteps;
      for (let f = 0; f < this.fragments.length; f++) {
        this.#rounds[f] = m.rounds[f];
        this.#applied[f] = m.applied[f];
        this.#pending[f] = undefined;
        this.#staged[f] = false;
      }
      for (const p of m.pending) this.#pending[p.fragment] = { round: p.round, done: Promise.resolve(), landed: true };
    } finally {
      this.#busy = false;
    }
  }

  /**
   * @internal For elastic training: the outer state as it stands, without waiting. A round
   * whose average has not landed (its communicator failed) is dropped: its counter goes back, as
   * if it had not started, and its buffer is not read. `dropped` says whether one was. (In sync
   * mode a round is launched and landed in one step(), so a dropped round is due now.)
   */
  abandonRounds(): { state: DiLoCoState; dropped: boolean } {
    let dropped = false;
    for (let f = 0; f < this.fragments.length; f++) {
      const p = this.#pending[f];
      // A round counted but not applied: its all-reduce failed, or was refused at once by a
      // communicator already aborted (then it never became pending).
      if (this.#rounds[f] > this.#applied[f] && !p?.landed) {
        this.#pending[f] = undefined;
        this.#rounds[f] = this.#applied[f];
        dropped = true;
      }
    }
    return {
      dropped,
      state: {
        meta: this.#meta([]),
        shared: { global: toHost(this.#global), momentum: toHost(this.#momentum), delta: toHost(this.#delta) },
        local: { residuals: this.#views.flatMap((v) => (v.residual === undefined ? [] : [new Float32Array(v.residual.length)])) },
      },
    };
  }

  /**
   * @internal For elastic training, in sync mode: takes fragment f's round again at once over
   * this DiLoCo's communicator and applies it. This rank's pseudo-gradient is scaled by
   * `weight` first, so that the average is over the ranks that have one (n/c on each of those c
   * ranks, 0 on the others).
   */
  async redo(f: number, weight: number): Promise<void> {
    this.#enter('redo');
    try {
      this.#weight = weight;
      this.#launch(f);
      this.#weight = 1;
      await this.#land(f);
    } finally {
      this.#weight = 1;
      this.#busy = false;
    }
  }

  /**
   * Releases θ_global, the momentum and the round buffers, after the all-reduces in flight have
   * finished writing into them (a failed one included); every later call is INVALID_STATE.
   */
  async free(): Promise<void> {
    if (this.#freed) return;
    this.#enter('free');
    try {
      for (const p of this.#pending) {
        if (p !== undefined) await p.done.catch(() => undefined);
      }
    } finally {
      this.#freed = true;
      this.#busy = false;
      for (const b of [this.#global, this.#momentum, this.#delta, this.#spare]) if (b !== undefined) release(b);
      for (const v of this.#views) if (v.residual !== undefined) release(v.residual);
    }
  }

  /** The counters and options of state(), with `pending` the rounds not yet applied. */
  #meta(pending: DiLoCoState['meta']['pending']): DiLoCoState['meta'] {
    const o = this.options;
    return {
      format: STATE_FORMAT,
      worldSize: this.comm.size,
      length: this.params.length,
      innerSteps: this.#innerSteps,
      rounds: [...this.#rounds],
      applied: [...this.#applied],
      pending,
      options: {
        syncEvery: o.syncEvery,
        fragments: o.fragments,
        fragmentSyncDelay: o.fragmentSyncDelay,
        fragmentUpdateAlpha: o.fragmentUpdateAlpha,
        mode: o.mode,
        outer: { ...o.outer },
        quantize: o.quantize === null ? null : { ...o.quantize },
      },
    };
  }

  #enter(what: string): void {
    if (this.#freed) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `DiLoCo.${what}: called after free()`);
    if (this.#busy) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `DiLoCo.${what}: called while a step(), state() or loadState() is still running; await it first`);
    this.#busy = true;
  }

  /** Takes fragment f's pseudo-gradient and starts averaging it. */
  #launch(f: number): void {
    const v = this.#views[f];
    const mode = this.options.mode;
    if (mode === 'eager') {
      // The estimate of this round's average (Kale et al.'s eager update): this rank's fresh Δ for
      // its own share, the last round's average (still in `delta`; zero before any) for the others'.
      const n = this.comm.size;
      copyBuffer(v.delta, v.spare!);
      scale((n - 1) / n, v.spare!);
      copyBuffer(v.global, v.delta);
      axpy(-1, v.local, v.delta);
      axpy(1 / n, v.delta, v.spare!);
      // The outer step that estimate gives, taken at once; kept in `spare` for the correction at the land.
      copyBuffer(v.global, v.local);
      tentativeOuterStep(v.local, v.momentum, v.spare!, this.options.outer);
      copyBuffer(v.local, v.spare!);
    } else if (mode === 'delayed' && this.#staged[f]) {
      copyBuffer(v.spare!, v.delta);
      this.#staged[f] = false;
    } else {
      copyBuffer(v.global, v.delta);
      axpy(-1, v.local, v.delta);
      if (this.#weight !== 1) scale(this.#weight, v.delta);
    }
    const round = ++this.#rounds[f];
    const done = this.#average(v);
    // Awaited at its land; a failure must not surface as unhandled before that.
    done.catch(() => {});
    this.#pending[f] = { round, done, landed: false };
    // Delayed mode starts every phase from θ_global (updated by the land just before, if any).
    if (mode === 'delayed') copyBuffer(v.global, v.local);
  }

  /** Waits for fragment f's average and takes the outer step with it. */
  async #land(f: number): Promise<void> {
    const p = this.#pending[f];
    if (p === undefined) throw new TrainingError(TrainingErrorCode.INVALID_STATE, `DiLoCo: fragment ${f} has no round to apply at step ${this.#innerSteps}`);
    const v = this.#views[f];
    const mode = this.options.mode;
    // Delayed mode: this step's Δ is against θ_global before the update below.
    if (mode === 'delayed') {
      copyBuffer(v.global, v.spare!);
      axpy(-1, v.local, v.spare!);
      this.#staged[f] = true;
    }
    await p.done;
    p.landed = true;
    outerStep(v.global, v.momentum, v.delta, this.options.outer);
    this.#pending[f] = undefined;
    this.#applied[f]++;
    if (mode === 'sync') {
      const alpha = this.options.fragmentUpdateAlpha;
      if (alpha === 0) {
        copyBuffer(v.global, v.local);
      } else {
        scale(alpha, v.local);
        axpy(1 - alpha, v.global, v.local);
      }
    } else if (mode === 'eager') {
      // Keep the inner steps taken since the estimate: local += θ_global − estimate.
      axpy(1, v.global, v.local);
      axpy(-1, v.spare!, v.local);
    }
    if (this.options.checkState) await this.#checkSame(f, p.round);
  }

  #average(v: Views): Promise<void> {
    const q = this.options.quantize;
    const d = v.delta;
    if (q === null) return this.comm.allReduce(d, { op: 'avg' }).wait().then(() => undefined);
    const common = { format: q.format, op: 'avg' as const, blockSize: q.blockSize };
    const r = v.residual;
    if (d instanceof DeviceBuffer) {
      return this.comm.allReduceQuantized(d, { ...common, ...(r === undefined ? {} : { errorFeedback: r as DeviceBuffer }) }).wait().then(() => undefined);
    }
    return this.comm.allReduceQuantized(d, { ...common, ...(r === undefined ? {} : { errorFeedback: r as Float32Array }) }).wait().then(() => undefined);
  }

  async #checkSame(f: number, round: number): Promise<void> {
    const hashes = await this.comm.allGatherObject(this.globalHash(f));
    const differ = hashes.flatMap((h, r) => (h === hashes[0] ? [] : [r]));
    if (differ.length > 0) {
      throw new TrainingError(
        TrainingErrorCode.STATE_MISMATCH,
        `DiLoCo on rank ${this.comm.rank}: θ_global of fragment ${f} differs between ranks after its round ${round}: rank 0 has ${hashes[0].slice(0, 16)}…, ${differ.map((r) => `rank ${r} has ${hashes[r].slice(0, 16)}…`).join(', ')}`,
      );
    }
  }
}


