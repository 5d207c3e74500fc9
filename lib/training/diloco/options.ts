/**
 * DiLoCo's options, checked up front with torchft's names where it has them:
 *
 * | torchft `DiLoCo(...)`              | here                                   |
 * |------------------------------------|----------------------------------------|
 * | `inner_optimizer`                  | `innerOptimizer` (stepped by the user) |
 * | `outer_optimizer` = SGD(lr, momentum, nesterov) | `outer: { lr, momentum, nesterov }` |
 * | `sync_every`                       | `syncEvery`                            |
 * | `model_fragments` (their count)    | `fragments`                            |
 * | `fragment_sync_delay`              | `fragmentSyncDelay`                    |
 * | `fragment_update_alpha`            | `fragmentUpdateAlpha`                  |
 * | `should_quantize`                  | `quantize`                             |
 * | —                                  | `mode`: 'sync', 'eager', 'delayed'     |
 */
import { DEFAULT_BLOCK_SIZE, type QuantFormat } from '../../index';
import { argRangeError, argTypeError, checkKeys, checkNumber } from '../errors';
import { Optimizer } from '../optim/optimizer';

export type DiLoCoMode = 'sync' | 'eager' | 'delayed';
export const DILOCO_MODES: readonly DiLoCoMode[] = ['sync', 'eager', 'delayed'];

/** The pseudo-gradient formats: DataParallel's hook names ('fp8' is e4m3) and the core's. */
export type PseudoGradientFormat = 'int8' | 'int4' | 'fp8' | 'fp8e4m3' | 'fp8e5m2';
export const PSEUDO_GRADIENT_FORMATS: readonly PseudoGradientFormat[] = ['int8', 'int4', 'fp8', 'fp8e4m3', 'fp8e5m2'];

export interface OuterOptions {
  /** Outer learning rate (default 0.7, the paper's). */
  lr?: number;
  /** Outer momentum (default 0.9). */
  momentum?: number;
  /** Nesterov momentum (default true; needs momentum > 0). */
  nesterov?: boolean;
}

export interface QuantizeOptions {
  /** Default 'int8' (INTELLECT-1's). */
  format?: PseudoGradientFormat;
  /** Elements per float32 scale (default the core's DEFAULT_BLOCK_SIZE). */
  blockSize?: number;
  /** Keep what quantization lost and add it to the next round's pseudo-gradient (default true). */
  errorFeedback?: boolean;
}

export interface DiLoCoOptions {
  /** The inner optimizer: saved and restored with the outer state by the DiLoCo checkpoints. */
  innerOptimizer?: Optimizer;
  /** H: inner steps between two synchronizations of each parameter. Required. */
  syncEvery: number;
  outer?: OuterOptions;
  /** P: the flat parameters split into P contiguous fragments of (nearly) equal size, synchronized in turn (default 1). */
  fragments?: number;
  /**
   * τ: inner steps a round's all-reduce overlaps. 'sync': the pseudo-gradient is taken τ steps
   * before the fragment's sync point (Streaming DiLoCo; default 0). 'eager': the average lands
   * τ steps after the sync point (required, ≥ 1). 'delayed': fixed at H (leave it unset).
   * Less than ⌊H / P⌋.
   */
  fragmentSyncDelay?: number;
  /** α in [0, 1]: after a 'sync' round, local ← α·local + (1 − α)·global (default 0). */
  fragmentUpdateAlpha?: number;
  /** Default 'sync'. */
  mode?: DiLoCoMode;
  /** Pseudo-gradients through allReduceQuantized: true (int8), a format, or options; default off. */
  quantize?: boolean | PseudoGradientFormat | QuantizeOptions;
  /**
   * Hash θ_global after every outer step and compare across ranks, failing with STATE_MISMATCH
   * (default: on when COLLECTIVES_DEBUG=detail).
   */
  checkState?: boolean;
  /** Broadcast rank 0's parameters first (default true). */
  broadcastParameters?: boolean;
}

export interface ResolvedQuantize {
  format: QuantFormat;
  blockSize: number;
  errorFeedback: boolean;
}

export interface ResolvedOptions {
  syncEvery: number;
  fragments: number;
  fragmentSyncDelay: number;
  fragmentUpdateAlpha: number;
  mode: DiLoCoMode;
  outer: { lr: number; momentum: number; nesterov: boolean };
  quantize: ResolvedQuantize | null;
  checkState: boolean;
  broadcastParameters: boolean;
}

const KEYS = ['innerOptimizer', 'syncEvery', 'outer', 'fragments', 'fragmentSyncDelay', 'fragmentUpdateAlpha', 'mode', 'quantize', 'checkState', 'broadcastParameters'];

export function resolveOptions(options: DiLoCoOptions | undefined, length: number): ResolvedOptions {
  if (options === undefined) throw argTypeError('options', 'an options object with syncEvery', options);
  const o = checkKeys<DiLoCoOptions>('options', options, KEYS);
  if (o.innerOptimizer !== undefined && !(o.innerOptimizer instanceof Optimizer)) {
    throw argTypeError('options.innerOptimizer', 'an Optimizer (AdamW, SGD)', o.innerOptimizer);
  }
  if (o.syncEvery === undefined) throw argTypeError('options.syncEvery', 'an integer ≥ 1 (the inner steps between synchronizations)', o.syncEvery);
  const syncEvery = checkNumber('options.syncEvery', o.syncEvery, 1, 2 ** 31, true);
  const fragments = o.fragments === undefined ? 1 : checkNumber('options.fragments', o.fragments, 1, Math.max(1, Math.min(syncEvery, length)), true);
  const mode = o.mode ?? 'sync';
  if (!DILOCO_MODES.includes(mode)) throw argTypeError('options.mode', `one of ${DILOCO_MODES.join(', ')}`, mode);
  // The shortest gap between two fragments' sync points.
  const stagger = Math.floor(syncEvery / fragments);
  let fragmentSyncDelay: number;
  if (mode === 'delayed') {
    if (o.fragmentSyncDelay !== undefined) throw argRangeError('options.fragmentSyncDelay', "no value in 'delayed' mode (a round's average lands a whole inner phase later)", o.fragmentSyncDelay);
    fragmentSyncDelay = syncEvery;
  } else if (mode === 'eager') {
    if (o.fragmentSyncDelay === undefined) throw argTypeError('options.fragmentSyncDelay', "an integer ≥ 1 in 'eager' mode (the inner steps the average has to land in)", o.fragmentSyncDelay);
    if (stagger < 2) throw argRangeError('options.syncEvery', `at least 2 × fragments in 'eager' mode (the average lands at least one inner step after its sync point)`, syncEvery);
    fragmentSyncDelay = checkNumber('options.fragmentSyncDelay', o.fragmentSyncDelay, 1, stagger - 1, true);
  } else {
    fragmentSyncDelay = o.fragmentSyncDelay === undefined ? 0 : checkNumber('options.fragmentSyncDelay', o.fragmentSyncDelay, 0, stagger - 1, true);
  }
  const fragmentUpdateAlpha = o.fragmentUpdateAlpha === undefined ? 0 : checkNumber('options.fragmentUpdateAlpha', o.fragmentUpdateAlpha, 0, 1);
  if (mode !== 'sync' && fragmentUpdateAlpha !== 0) throw argRangeError('options.fragmentUpdateAlpha', "0 outside 'sync' mode (eager and delayed keep the local progress themselves)", fragmentUpdateAlpha);
  const outer = resolveOuter(o.outer);
  for (const k of ['checkState', 'broadcastParameters'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw argTypeError(`options.${k}`, 'a boolean', o[k]);
  }
  return {
    syncEvery,
    fragments,
    fragmentSyncDelay,
    fragmentUpdateAlpha,
    mode,
    outer,
    quantize: resolveQuantize(o.quantize),
    checkState: o.checkState ?? (process.env.COLLECTIVES_DEBUG ?? '').toLowerCase() === 'detail',
    broadcastParameters: o.broadcastParameters ?? true,
  };
}

function resolveOuter(v: OuterOptions | undefined): ResolvedOptions['outer'] {
  const o = checkKeys<OuterOptions>('options.outer', v, ['lr', 'momentum', 'nesterov']);
  const lr = o.lr === undefined ? 0.7 : checkNumber('options.outer.lr', o.lr, 0, Number.MAX_VALUE);
  const momentum = o.momentum === undefined ? 0.9 : checkNumber('options.outer.momentum', o.momentum, 0, 1);
  if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') throw argTypeError('options.outer.nesterov', 'a boolean', o.nesterov);
  const nesterov = o.nesterov ?? momentum > 0;
  if (nesterov && momentum === 0) throw argRangeError('options.outer.momentum', 'a momentum > 0 with nesterov', momentum);
  return { lr, momentum, nesterov };
}

function resolveQuantize(v: DiLoCoOptions['quantize']): ResolvedQuantize | null {
  if (v === undefined || v === false) return null;
  const o: QuantizeOptions = v === true ? {} : typeof v === 'string' ? { format: v } : checkKeys<QuantizeOptions>('options.quantize', v, ['format', 'blockSize', 'errorFeedback']);
  const format = o.format ?? 'int8';
  if (!PSEUDO_GRADIENT_FORMATS.includes(format)) throw argTypeError(typeof v === 'string' ? 'options.quantize' : 'options.quantize.format', `one of ${PSEUDO_GRADIENT_FORMATS.join(', ')}`, format);
  const blockSize = o.blockSize === undefined ? DEFAULT_BLOCK_SIZE : checkNumber('options.quantize.blockSize', o.blockSize, 8, 1 << 20, true);
  if (blockSize % 8 !== 0) throw argRangeError('options.quantize.blockSize', 'a multiple of 8', blockSize);
  if (o.errorFeedback !== undefined && typeof o.errorFeedback !== 'boolean') throw argTypeError('options.quantize.errorFeedback', 'a boolean', o.errorFeedback);
  return { format: format === 'fp8' ? 'fp8e4m3' : format, blockSize, errorFeedback: o.errorFeedback ?? true };
}
