import { axpy, scale } from '../../ops';
import { allocate, copyBuffer, release, type Float32Buffer } from '../buffers';
import { argRangeError, argTypeError, checkKeys, checkNumber } from '../errors';
import type { ParameterSet } from '../params';
import { checkLearningRate, Optimizer, type FlatRange, type LearningRate } from './optimizer';

export interface SGDOptions {
  /** Learning rate or schedule. Required. */
  lr: LearningRate;
  /** Default 0 (no momentum buffer). */
  momentum?: number;
  /** Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Default false; needs momentum > 0 and dampening 0. */
  nesterov?: boolean;
}

/**
 * torch.optim.SGD (maximize=False) over a ParameterSet or a range of its flat buffers. Step t
 * with learning rate lr, in torch's order of operations:
 *
 *   d ← g + wd·p                                   (when wd ≠ 0)
 *   buf ← d on step 1, else momentum·buf + (1 − dampening)·d      (when momentum ≠ 0)
 *   d ← nesterov ? d + momentum·buf : buf                          (when momentum ≠ 0)
 *   p ← p − lr·d
 *
 * built from collectives/ops' axpy and scale (float32, host or device). The gradients are left
 * as they are: d lives in a scratch buffer when it differs from g. State: `momentum_buffer`
 * when momentum ≠ 0.
 */
export class SGD extends Optimizer {
  readonly kind = 'SGD';
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly momentumBuffer: Float32Buffer | undefined;
  private readonly scratch: Float32Buffer | undefined;

  constructor(params: ParameterSet, options: SGDOptions, range?: FlatRange) {
    if (options === undefined) throw argTypeError('options', 'an options object with lr', options);
    const o = checkKeys<SGDOptions>('options', options, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov']);
    if (o.lr === undefined) throw argTypeError('options.lr', 'a number or a function of the step number', o.lr);
    super(params, checkLearningRate(o.lr), range);
    this.momentum = o.momentum === undefined ? 0 : checkNumber('options.momentum', o.momentum, 0, Number.MAX_VALUE);
    this.dampening = o.dampening === undefined ? 0 : checkNumber('options.dampening', o.dampening, 0, 1);
    this.weightDecay = o.weightDecay === undefined ? 0 : checkNumber('options.weightDecay', o.weightDecay, 0, Number.MAX_VALUE);
    if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') throw argTypeError('options.nesterov', 'a boolean', o.nesterov);
    this.nesterov = o.nesterov ?? false;
    if (this.nesterov && this.momentum === 0) throw argRangeError('options.momentum', 'a momentum > 0 with nesterov', this.momentum);
    if (this.nesterov && this.dampening !== 0) throw argRangeError('options.dampening', 'dampening 0 with nesterov', this.dampening);
    this.momentumBuffer = this.momentum !== 0 ? this.addBuffer('momentum_buffer') : undefined;
    this.scratch = this.weightDecay !== 0 || this.nesterov ? allocate(this.range.end - this.range.begin, params.device) : undefined;
  }

  protected update(begin: number, end: number, t: number, lr: number): void {
    const p = this.params.data.subarray(begin, end);
    const g = this.params.grad.subarray(begin, end);
    const s = this.scratch === undefined ? undefined : this.part(this.scratch, begin, end);
    let d = g;
    if (this.weightDecay !== 0 && s !== undefined) {
      copyBuffer(g, s);
      axpy(this.weightDecay, p, s);
      d = s;
    }
    if (this.momentumBuffer !== undefined) {
      const buf = this.part(this.momentumBuffer, begin, end);
      if (t === 1) {
        copyBuffer(d, buf);
      } else {
        scale(this.momentum, buf);
        axpy(1 - this.dampening, d, buf);
      }
      if (this.nesterov && s !== undefined) {
        if (d !== s) copyBuffer(d, s);
        axpy(this.momentum, buf, s);
        d = s;
      } else {
        d = buf;
      }
    }
    axpy(-lr, d, p);
  }

  protected numericOptions(): Record<string, number | boolean> {
    return { momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov };
  }

  override free(): void {
    super.free();
    if (this.scratch !== undefined) release(this.scratch);
  }
}
