import { adamwStep } from '../../ops';
import { argRangeError, argTypeError, checkKeys, checkNumber } from '../errors';
import type { ParameterSet } from '../params';
import type { Float32Buffer } from '../buffers';
import { checkLearningRate, Optimizer, type FlatRange, type LearningRate } from './optimizer';

export interface AdamWOptions {
  /** Learning rate or schedule (default 1e-3). */
  lr?: LearningRate;
  /** (β1, β2), each in [0, 1) (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 1e-2). */
  weightDecay?: number;
}

/**
 * torch.optim.AdamW (amsgrad=False, maximize=False) over a ParameterSet, or over a range of its
 * flat buffers (ZeRO stage 1: each rank holds the state of its own shard). For step t with
 * learning rate lr:
 *
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
 *   p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + eps)
 *
 * computed by collectives/ops' adamwStep in float32 (the same formula as torch's
 * _single_tensor_adamw; torch rounds some operations in a different order — lerp for m, and
 * (step_size·m)/denom in addcdiv — so the two agree to float32 rounding, not bit for bit).
 * State: `exp_avg`, `exp_avg_sq`, zero before the first step, on the parameters' device.
 */
export class AdamW extends Optimizer {
  readonly kind = 'AdamW';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly expAvg: Float32Buffer;
  private readonly expAvgSq: Float32Buffer;

  constructor(params: ParameterSet, options?: AdamWOptions, range?: FlatRange) {
    const o = checkKeys<AdamWOptions>('options', options, ['lr', 'betas', 'eps', 'weightDecay']);
    super(params, checkLearningRate(o.lr, 1e-3), range);
    const betas = o.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw argTypeError('options.betas', 'an array of two numbers', betas);
    this.beta1 = checkBeta('options.betas[0]', betas[0]);
    this.beta2 = checkBeta('options.betas[1]', betas[1]);
    this.eps = o.eps === undefined ? 1e-8 : checkNumber('options.eps', o.eps, 0, Number.MAX_VALUE);
    this.weightDecay = o.weightDecay === undefined ? 1e-2 : checkNumber('options.weightDecay', o.weightDecay, 0, Number.MAX_VALUE);
    this.expAvg = this.addBuffer('exp_avg');
    this.expAvgSq = this.addBuffer('exp_avg_sq');
  }

  protected update(begin: number, end: number, t: number, lr: number): void {
    adamwStep(this.params.data.subarray(begin, end), this.params.grad.subarray(begin, end), this.part(this.expAvg, begin, end), this.part(this.expAvgSq, begin, end), {
      lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      step: t,
    });
  }

  protected numericOptions(): Record<string, number> {
    return { beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay };
  }
}

function checkBeta(name: string, v: unknown): number {
  const b = checkNumber(name, v, 0, 1);
  if (b === 1) throw argRangeError(name, 'a number in [0, 1)', b);
  return b;
}
