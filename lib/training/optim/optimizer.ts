import { allocate, fromHost, release, toHost, view, type Float32Buffer } from '../buffers';
import { argRangeError, argTypeError, checkKeys, checkNumber, TrainingError, TrainingErrorCode } from '../errors';
import type { ParameterSet } from '../params';

/**
 * A learning rate: a number, or a function of the step number t = 1, 2, … (the step being
 * taken: the first `step()` asks for lr(1)). torch's schedulers, stepped after each
 * optimizer.step(), give the t-th optimizer step the lr of their `last_epoch = t − 1`; the
 * schedules in schedules.ts take t and do that conversion themselves.
 */
export type LearningRate = number | ((step: number) => number);

/** Elements [begin, end) of a ParameterSet's flat buffers. */
export interface FlatRange {
  begin: number;
  end: number;
}

/** A snapshot of an optimizer: host copies, independent of later steps. */
export interface OptimizerState {
  /** Steps taken. */
  step: number;
  /** The hyperparameters as numbers (lr: the rate of the last step taken, or of step 1 before any). */
  options: Record<string, number | boolean>;
  /** The flat range the state covers. */
  range: FlatRange;
  /** Each state buffer over the range (`range.end − range.begin` elements), by torch's names. */
  tensors: Record<string, Float32Array>;
}

/**
 * What AdamW and SGD share: the range they own, the step count, the learning rate per step,
 * state buffers over the range, and snapshots.
 *
 * `step()` is exactly `stepRange(range.begin, range.end)` then `endStep()`: the updates are
 * elementwise, so stepping bucket by bucket (each sub-range once, before `endStep()`) gives the
 * same bits as one `step()`.
 */
export abstract class Optimizer {
  /** 'AdamW' or 'SGD': recorded in checkpoints. */
  abstract readonly kind: string;
  readonly params: ParameterSet;
  /** The flat range this optimizer updates and holds state for. */
  readonly range: Readonly<FlatRange>;
  private steps = 0;
  private readonly lrOption: LearningRate;
  private lrCache: { step: number; lr: number } | undefined;
  protected readonly buffers = new Map<string, Float32Buffer>();

  protected constructor(params: ParameterSet, lr: LearningRate, range: FlatRange | undefined) {
    this.params = params;
    this.lrOption = lr;
    this.range = Object.freeze(checkRange(params, range));
  }

  /** Steps taken (completed by `step()` or `endStep()`). */
  get stepCount(): number {
    return this.steps;
  }

  /** The learning rate of step t (1-based); a function's value is checked and asked once per step. */
  lrAt(t: number): number {
    if (typeof this.lrOption === 'number') return this.lrOption;
    if (this.lrCache?.step === t) return this.lrCache.lr;
    const lr = this.lrOption(t);
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw argRangeError(`options.lr(${t})`, 'a finite number ≥ 0', lr);
    this.lrCache = { step: t, lr };
    return lr;
  }

  /** One full step over the range: `stepRange(range.begin, range.end)`, then `endStep()`. */
  step(): void {
    this.stepRange(this.range.begin, this.range.end);
    this.endStep();
  }

  /**
   * Applies the next step's update (step number `stepCount + 1`) to elements [begin, end) only,
   * without counting the step. Each element of the range should be stepped once before
   * `endStep()`; stepping one twice applies the update twice.
   */
  stepRange(begin: number, end: number): void {
    checkNumber('begin', begin, this.range.begin, this.range.end, true);
    checkNumber('end', end, begin, this.range.end, true);
    if (begin === end) return;
    this.update(begin, end, this.steps + 1, this.lrAt(this.steps + 1));
  }

  /** Counts the step that `stepRange` calls have applied. */
  endStep(): void {
    this.steps++;
  }

  /** A host snapshot of the step count, hyperparameters and state buffers. */
  state(): OptimizerState {
    const tensors: Record<string, Float32Array> = {};
    for (const [name, b] of this.buffers) tensors[name] = toHost(b);
    const lr = this.lrAt(Math.max(1, this.steps));
    return { step: this.steps, options: { ...this.numericOptions(), lr }, range: { ...this.range }, tensors };
  }

  /**
   * Restores the step count and state buffers from `state()` of an optimizer of the same kind
   * over the same range. The hyperparameters stay this optimizer's own (a schedule cannot be
   * serialized, and a resumed run may change them on purpose). Everything is checked before
   * anything is written.
   */
  loadState(state: OptimizerState): void {
    if (state === null || typeof state !== 'object') throw argTypeError('state', 'an optimizer state object', state);
    const s = checkKeys<OptimizerState>('state', state, ['step', 'options', 'range', 'tensors']);
    checkNumber('state.step', s.step, 0, Number.MAX_SAFE_INTEGER, true);
    if (s.range !== undefined && (s.range.begin !== this.range.begin || s.range.end !== this.range.end)) {
      throw new TrainingError(
        TrainingErrorCode.CHECKPOINT_INVALID,
        `${this.kind}.loadState: the state covers elements [${s.range.begin}, ${s.range.end}), this optimizer [${this.range.begin}, ${this.range.end})`,
      );
    }
    const tensors = s.tensors;
    if (tensors === null || typeof tensors !== 'object') throw argTypeError('state.tensors', 'a record of Float32Arrays', tensors);
    const length = this.range.end - this.range.begin;
    for (const name of Object.keys(tensors)) {
      if (!this.buffers.has(name)) {
        throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${this.kind}.loadState: unexpected state tensor "${name}" (expected ${this.describeNames()})`);
      }
    }
    for (const name of this.buffers.keys()) {
      const t = tensors[name];
      if (t === undefined) throw new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `${this.kind}.loadState: state tensor "${name}" is missing`);
      if (!(t instanceof Float32Array) || t.length !== length) {
        throw new TrainingError(
          TrainingErrorCode.CHECKPOINT_INVALID,
          `${this.kind}.loadState: state tensor "${name}" should be a Float32Array of ${length} elements, got ${t instanceof Float32Array ? t.length + ' elements' : typeof t}`,
        );
      }
    }
    for (const [name, b] of this.buffers) fromHost(tensors[name], b);
    this.steps = s.step;
    this.lrCache = undefined;
  }

  /** The names of the state buffers (the keys of `state().tensors`). */
  stateNames(): string[] {
    return [...this.buffers.keys()];
  }

  /** Releases device memory held as state (no-op on host). */
  free(): void {
    for (const b of this.buffers.values()) release(b);
  }

  /** A zeroed state buffer over the range, on the parameters' device. */
  protected addBuffer(name: string): Float32Buffer {
    const b = allocate(this.range.end - this.range.begin, this.params.device);
    this.buffers.set(name, b);
    return b;
  }

  /** The [begin, end) part of a buffer over the range (begin, end in flat-buffer elements). */
  protected part(b: Float32Buffer, begin: number, end: number): Float32Buffer {
    return view(b, begin - this.range.begin, end - this.range.begin);
  }

  /** The update of step `t` (1-based) with learning rate `lr` on flat elements [begin, end). */
  protected abstract update(begin: number, end: number, t: number, lr: number): void;

  /** The hyperparameters other than lr. */
  protected abstract numericOptions(): Record<string, number | boolean>;

  private describeNames(): string {
    return [...this.buffers.keys()].map((n) => `"${n}"`).join(', ') || 'none';
  }
}

/** lr option: a number ≥ 0 or a function of the step number. */
export function checkLearningRate(v: unknown, fallback?: number): LearningRate {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v === 'function') return v as (step: number) => number;
  if (typeof v !== 'number') throw argTypeError('options.lr', 'a number or a function of the step number', v);
  return checkNumber('options.lr', v, 0, Number.MAX_VALUE);
}

function checkRange(params: ParameterSet, range: FlatRange | undefined): FlatRange {
  if (range === undefined) return { begin: 0, end: params.length };
  const r = checkKeys<FlatRange>('range', range, ['begin', 'end']);
  const begin = checkNumber('range.begin', r.begin, 0, params.length, true);
  const end = checkNumber('range.end', r.end, begin, params.length, true);
  return { begin, end };
}
