/**
 * DiLoCo's outer state as one value, split by who holds what:
 * - `meta`: the counters, the rounds not yet applied and the options they were made with (JSON);
 * - `shared`: θ_global, the momentum buffer and the averaged Δ of the pending rounds — the
 *   same bytes on every rank, so one rank's copy can stand for all (a joiner can get it by
 *   broadcast);
 * - `local`: this rank's own, the error-feedback residuals and eager mode's estimates.
 */
import { errorFeedbackLength } from '../../index';
import { TrainingError, TrainingErrorCode } from '../errors';
import type { DiLoCoMode, ResolvedOptions, ResolvedQuantize } from './options';

export const STATE_FORMAT = 1;

export interface DiLoCoStateMeta {
  format: number;
  worldSize: number;
  /** The flat parameters' padded length. */
  length: number;
  innerSteps: number;
  /** Rounds started, per fragment. */
  rounds: number[];
  /** Outer steps applied, per fragment. */
  applied: number[];
  /** Rounds started and not yet applied; their averages are in `shared.delta`. */
  pending: { fragment: number; round: number }[];
  /** The options every rank must share (the per-process switches left out). */
  options: Omit<ResolvedOptions, 'checkState' | 'broadcastParameters'>;
}

export interface DiLoCoState {
  meta: DiLoCoStateMeta;
  shared: { global: Float32Array; momentum: Float32Array; delta: Float32Array };
  local: { spare?: Float32Array; residuals: Float32Array[] };
}

/** What checkStateFits needs of the DiLoCo it loads into. */
interface Target {
  readonly comm: { readonly size: number };
  readonly params: { readonly length: number };
  readonly fragments: readonly { begin: number; end: number }[];
  readonly options: {
    readonly syncEvery: number;
    readonly fragments: number;
    readonly fragmentSyncDelay: number;
    readonly fragmentUpdateAlpha: number;
    readonly mode: DiLoCoMode;
    readonly quantize: ResolvedQuantize | null;
  };
}

function invalid(what: string): TrainingError {
  return new TrainingError(TrainingErrorCode.CHECKPOINT_INVALID, `DiLoCo.loadState: ${what}`);
}

/** Throws CHECKPOINT_INVALID unless `state` can be loaded into `target` as it is. */
export function checkStateFits(state: DiLoCoState, target: Target): void {
  if (state === null || typeof state !== 'object' || state.meta === null || typeof state.meta !== 'object') throw invalid('not a DiLoCo state object');
  const m = state.meta;
  if (m.format !== STATE_FORMAT) throw invalid(`format ${JSON.stringify(m.format)}, this version reads format ${STATE_FORMAT}`);
  if (m.length !== target.params.length) throw invalid(`the state is over ${m.length} parameters, this DiLoCo over ${target.params.length}`);
  const o = target.options;
  const so = m.options ?? ({} as DiLoCoStateMeta['options']);
  for (const k of ['syncEvery', 'fragments', 'fragmentSyncDelay', 'fragmentUpdateAlpha', 'mode'] as const) {
    if (so[k] !== o[k]) throw invalid(`the state was made with ${k} ${JSON.stringify(so[k])}, this DiLoCo has ${JSON.stringify(o[k])}`);
  }
  if (JSON.stringify(so.quantize ?? null) !== JSON.stringify(o.quantize)) throw invalid(`the state was made with quantize ${JSON.stringify(so.quantize)}, this DiLoCo has ${JSON.stringify(o.quantize)}`);
  if (o.quantize?.errorFeedback && m.worldSize !== target.comm.size) throw invalid(`the error-feedback residuals are of ${m.worldSize} ranks, this communicator has ${target.comm.size}`);
  const P = target.fragments.length;
  const counts = (name: string, a: unknown): number[] => {
    if (!Array.isArray(a) || a.length !== P || !a.every((x) => Number.isSafeInteger(x) && x >= 0)) throw invalid(`${name} should be ${P} integers ≥ 0`);
    return a;
  };
  counts('meta.rounds', m.rounds);
  counts('meta.applied', m.applied);
  if (!Number.isSafeInteger(m.innerSteps) || m.innerSteps < 0) throw invalid('meta.innerSteps should be an integer ≥ 0');
  if (!Array.isArray(m.pending)) throw invalid('meta.pending should be an array');
  for (const p of m.pending) {
    if (!Number.isInteger(p?.fragment) || p.fragment < 0 || p.fragment >= P || p.round !== m.rounds[p.fragment]) throw invalid(`meta.pending holds ${JSON.stringify(p)}, which is no fragment's latest round`);
  }
  const sized = (name: string, a: unknown, n: number): void => {
    if (!(a instanceof Float32Array) || a.length !== n) throw invalid(`${name} should be a Float32Array of ${n} elements, got ${a instanceof Float32Array ? a.length + ' elements' : typeof a}`);
  };
  const L = target.params.length;
  sized('shared.global', state.shared?.global, L);
  sized('shared.momentum', state.shared?.momentum, L);
  sized('shared.delta', state.shared?.delta, L);
  if (o.mode !== 'sync') sized('local.spare', state.local?.spare, L);
  const residuals = state.local?.residuals ?? [];
  const want = o.quantize?.errorFeedback ? P : 0;
  if (!Array.isArray(residuals) || residuals.length !== want) throw invalid(`local.residuals should hold ${want} residuals`);
  residuals.forEach((r, f) => {
    const n = target.fragments[f].end - target.fragments[f].begin;
    sized(`local.residuals[${f}]`, r, errorFeedbackLength('allReduce', n, target.comm.size));
  });
}
