/**
 * The outer optimizer: torch.optim.SGD(lr, momentum, nesterov, dampening 0, weight decay 0)
 * with the pseudo-gradient Δ = θ_global − θ_local (averaged) as its gradient, on host or
 * device buffers through collectives/ops. buf starts at zero, so the first step's
 * buf = μ·0 + Δ = Δ is torch's buf = g.
 */
import { axpy, nesterovStep, scale } from '../../ops';
import type { Float32Buffer } from '../buffers';

export interface OuterHyper {
  lr: number;
  momentum: number;
  nesterov: boolean;
}

/** θ ← the outer step of θ with momentum buffer `buf` and pseudo-gradient `delta` (all one length). */
export function outerStep(theta: Float32Buffer, buf: Float32Buffer, delta: Float32Buffer, o: OuterHyper): void {
  if (o.nesterov) {
    nesterovStep(theta, delta, buf, { lr: o.lr, momentum: o.momentum });
  } else if (o.momentum !== 0) {
    scale(o.momentum, buf);
    axpy(1, delta, buf);
    axpy(-o.lr, buf, theta);
  } else {
    axpy(-o.lr, delta, theta);
  }
}

/**
 * out ← the θ an outer step with `delta` would give, leaving θ and buf untouched (eager mode's
 * local estimate): θ − lr·((1 + μ)·Δ + μ²·buf) with Nesterov, θ − lr·(Δ + μ·buf) without.
 * `out` holds a copy of θ on entry.
 */
export function tentativeOuterStep(out: Float32Buffer, buf: Float32Buffer, delta: Float32Buffer, o: OuterHyper): void {
  const mu = o.momentum;
  if (o.nesterov) {
    axpy(-o.lr * (1 + mu), delta, out);
    axpy(-o.lr * mu * mu, buf, out);
  } else {
    axpy(-o.lr, delta, out);
    if (mu !== 0) axpy(-o.lr * mu, buf, out);
  }
}
