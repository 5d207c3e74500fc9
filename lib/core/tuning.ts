/**
 * How the Gloo backend drives its TCP pairs. The measured defaults are in
 * bench/RESULTS.md; these knobs exist to reproduce those measurements and to
 * fall back to Gloo's default mode if a machine behaves differently.
 */

import os from 'node:os';
import { argRangeError, argTypeError } from './errors';
import { checkInt } from './options';

export interface GlooTuning {
  /**
   * 'auto' (default): synchronous pairs where Gloo has an algorithm for them,
   * Gloo's default asynchronous mode elsewhere. 'async': Gloo's default mode
   * everywhere. 'sync': an alias of 'auto', still accepted (and reported as given).
   */
  mode?: 'auto' | 'async' | 'sync';
  /** All-reduce on synchronous pairs: chosen by size ('auto'), or forced. */
  allReduceAlgorithm?: 'auto' | 'ring' | 'halving-doubling';
  /**
   * Spin on the socket instead of sleeping in recv(2). Default: only when every
   * local rank has at least two cores (one for JavaScript, one for the queue
   * thread); spinning on a shared core starves the rank that must send.
   */
  busyPoll?: boolean;
  /**
   * The inline path (docs/tuning.md#the-inline-path): a call of at most this many bytes that
   * would run on Gloo's synchronous pairs runs on the calling (JavaScript) thread when the
   * communicator has nothing queued or in flight, and returns an already settled Work. Off (0)
   * by default: it helps a small call awaited at once but blocks the thread and slows calls
   * issued back to back. 'auto': DEFAULT_INLINE_BYTES, only while the communicator is the only
   * one of more than one rank in its thread; a number: that threshold, always. Never in the
   * process that hosts the rendezvous store (its JavaScript thread serves the other ranks).
   */
  inlineBytes?: number | 'auto';
}

/** The settings a communicator runs with: GlooTuning resolved, the inline threshold in bytes. */
export type ResolvedGlooTuning = Required<Omit<GlooTuning, 'inlineBytes'>> & { inlineBytes: number };

/**
 * The default inline threshold: up to here an awaited call on 2 ranks took a fraction of the
 * queued path's time (bench/RESULTS.md, "the inline path"); above it the blocked JavaScript
 * thread costs more overlap than the skipped wake-ups save.
 */
export const DEFAULT_INLINE_BYTES = 65536;

const MODES = ['auto', 'async', 'sync'] as const;
const ALLREDUCE = ['auto', 'ring', 'halving-doubling'] as const;

function oneOf<T extends string>(name: string, allowed: readonly T[], value: unknown): T | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw argRangeError(name, allowed.map((a) => `'${a}'`).join(', '), value);
  }
  return value as T;
}

function busyPollFrom(name: string, value: unknown): boolean | undefined {
  if (value === undefined || value === '' || value === 'auto') return undefined;
  if (typeof value === 'boolean') return value;
  if (value === '1') return true;
  if (value === '0') return false;
  throw argTypeError(name, typeof value === 'string' ? "'0', '1' or 'auto'" : 'a boolean', value);
}

/** options.gloo.inlineBytes, else COLLECTIVES_INLINE_BYTES; undefined when neither is set. */
export function givenInlineBytes(given: GlooTuning | undefined, env: NodeJS.ProcessEnv): number | 'auto' | undefined {
  const v = given?.inlineBytes;
  if (v === 'auto') return v;
  if (v !== undefined) return checkInt('options.gloo.inlineBytes', v, 0, Number.MAX_SAFE_INTEGER);
  const e = env.COLLECTIVES_INLINE_BYTES;
  if (e === undefined || e === '') return undefined;
  if (e === 'auto') return e;
  if (!/^[0-9]+$/.test(e) || !Number.isSafeInteger(Number(e))) {
    throw argTypeError('COLLECTIVES_INLINE_BYTES', 'a number of bytes (an integer, 0 for off)', e);
  }
  return Number(e);
}

/**
 * Options win over COLLECTIVES_GLOO_MODE, COLLECTIVES_ALLREDUCE_ALGORITHM, COLLECTIVES_BUSY_POLL,
 * COLLECTIVES_INLINE_BYTES. `hostsStore`: this process serves the rendezvous store the other
 * ranks use, which turns the inline path off.
 */
export function resolveTuning(
  given: GlooTuning | undefined,
  env: NodeJS.ProcessEnv,
  localWorldSize: number,
  hostsStore = false,
): ResolvedGlooTuning {
  if (given !== undefined && (typeof given !== 'object' || given === null)) {
    throw argTypeError('options.gloo', 'an object', given);
  }
  const g = given ?? {};
  const mode =
    oneOf('options.gloo.mode', MODES, g.mode) ?? oneOf('COLLECTIVES_GLOO_MODE', MODES, env.COLLECTIVES_GLOO_MODE);
  const allReduceAlgorithm =
    oneOf('options.gloo.allReduceAlgorithm', ALLREDUCE, g.allReduceAlgorithm) ??
    oneOf('COLLECTIVES_ALLREDUCE_ALGORITHM', ALLREDUCE, env.COLLECTIVES_ALLREDUCE_ALGORITHM);
  const busyPoll =
    busyPollFrom('options.gloo.busyPoll', g.busyPoll) ??
    busyPollFrom('COLLECTIVES_BUSY_POLL', env.COLLECTIVES_BUSY_POLL) ??
    localWorldSize * 2 <= os.availableParallelism();
  const threshold = givenInlineBytes(g, env) ?? 0;
  const inline = threshold === 'auto' ? DEFAULT_INLINE_BYTES : threshold;
  return { mode: mode ?? 'auto', allReduceAlgorithm: allReduceAlgorithm ?? 'auto', busyPoll, inlineBytes: hostsStore ? 0 : inline };
}
