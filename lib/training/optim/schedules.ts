/**
 * Learning-rate schedules as functions of the step number t = 1, 2, … (what the optimizers'
 * `lr` option is called with). Each returns the rate torch gives the t-th optimizer step when
 * its scheduler is stepped after every optimizer.step(): the scheduler's value at
 * `last_epoch = t − 1`. So step 1 runs at the schedule's starting value, as in torch.
 */
import { argRangeError, checkKeys, checkNumber } from '../errors';

export type Schedule = (step: number) => number;

export interface LinearLROptions {
  /** Factor of the base rate at the first step (default 1/3, as torch). */
  startFactor?: number;
  /** Factor reached after `totalIters` steps and kept (default 1). */
  endFactor?: number;
  /** Steps to go from startFactor to endFactor (default 5). */
  totalIters?: number;
}

/**
 * torch.optim.lr_scheduler.LinearLR's closed form (`_get_closed_form_lr`):
 * lr = baseLr · (start + (end − start) · min(e, totalIters) / totalIters), e = t − 1.
 */
export function linearLR(baseLr: number, options?: LinearLROptions): Schedule {
  checkBase(baseLr);
  const o = checkKeys<LinearLROptions>('options', options, ['startFactor', 'endFactor', 'totalIters']);
  const start = o.startFactor === undefined ? 1 / 3 : checkNumber('options.startFactor', o.startFactor, 0, 1);
  if (start === 0) throw argRangeError('options.startFactor', 'a number in (0, 1]', start);
  const end = o.endFactor === undefined ? 1 : checkNumber('options.endFactor', o.endFactor, 0, 1);
  const total = o.totalIters === undefined ? 5 : checkNumber('options.totalIters', o.totalIters, 1, Number.MAX_SAFE_INTEGER, true);
  return (t) => baseLr * (start + ((end - start) * Math.min(epoch(t), total)) / total);
}

export interface CosineAnnealingLROptions {
  /** Steps of the half cosine (torch's T_max). Required. */
  tMax: number;
  /** Minimum rate (default 0). */
  etaMin?: number;
}

/**
 * torch.optim.lr_scheduler.CosineAnnealingLR's closed form (`_get_closed_form_lr`, the SGDR
 * formula without restarts): lr = etaMin + (baseLr − etaMin)·(1 + cos(π·e/tMax))/2, e = t − 1.
 * torch's recursive get_lr() agrees with it up to rounding; past tMax the cosine continues, as
 * in torch.
 */
export function cosineAnnealingLR(baseLr: number, options: CosineAnnealingLROptions): Schedule {
  checkBase(baseLr);
  const o = checkKeys<CosineAnnealingLROptions>('options', options, ['tMax', 'etaMin']);
  const tMax = checkNumber('options.tMax', o.tMax, 1, Number.MAX_SAFE_INTEGER, true);
  const etaMin = o.etaMin === undefined ? 0 : checkNumber('options.etaMin', o.etaMin, 0, Number.MAX_VALUE);
  return (t) => etaMin + ((baseLr - etaMin) * (1 + Math.cos((Math.PI * epoch(t)) / tMax))) / 2;
}

export interface CosineWithWarmupOptions {
  /** Steps of linear warm-up from 0 (num_warmup_steps). Required. */
  warmupSteps: number;
  /** All the steps of training (num_training_steps). Required. */
  totalSteps: number;
  /** Cosine periods over the decay (default 0.5: from the peak down to 0). */
  numCycles?: number;
}

/**
 * Hugging Face transformers' `get_cosine_schedule_with_warmup` (a LambdaLR), with e = t − 1:
 * e < warmup: lr = baseLr · e / max(1, warmup) (so step 1 runs at 0, as there);
 * else lr = baseLr · max(0, (1 + cos(π · 2·numCycles · progress)) / 2),
 * progress = (e − warmup) / max(1, total − warmup). Past totalSteps the cosine goes on (with
 * numCycles 0.5 it rises again), as there: train for totalSteps.
 */
export function cosineWithWarmup(baseLr: number, options: CosineWithWarmupOptions): Schedule {
  checkBase(baseLr);
  const o = checkKeys<CosineWithWarmupOptions>('options', options, ['warmupSteps', 'totalSteps', 'numCycles']);
  const warmup = checkNumber('options.warmupSteps', o.warmupSteps, 0, Number.MAX_SAFE_INTEGER, true);
  const total = checkNumber('options.totalSteps', o.totalSteps, warmup, Number.MAX_SAFE_INTEGER, true);
  const cycles = o.numCycles === undefined ? 0.5 : checkNumber('options.numCycles', o.numCycles, 0, Number.MAX_VALUE);
  return (t) => {
    const e = epoch(t);
    if (e < warmup) return (baseLr * e) / Math.max(1, warmup);
    const progress = (e - warmup) / Math.max(1, total - warmup);
    return baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
  };
}

function checkBase(v: unknown): void {
  checkNumber('baseLr', v, 0, Number.MAX_VALUE);
}

function epoch(t: number): number {
  checkNumber('step', t, 1, Number.MAX_SAFE_INTEGER, true);
  return t - 1;
}
