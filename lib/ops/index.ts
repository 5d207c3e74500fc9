import { argRangeError, argTypeError } from '../core/errors';
import { DTYPE_CODE, checkArray, resolveDType, type DType, type HostArray } from '../core/dtypes';
import { DeviceBuffer, deviceCall, onDevice } from '../core/device';
import { checkDeviceBuffer, checkFloat32Buffers, checkSameDType, deviceOps } from '../core/device-args';
import type { NativeOps } from '../core/addon';
import { loadAddon } from '../core/loader';
import { checkInt, checkOptions } from '../core/options';

/**
 * Elementwise operations of the training layer (optimizer steps, axpy, scale,
 * casts), one API for host and device memory:
 * - on host typed arrays, native C++ loops on this thread;
 * - on DeviceBuffers, the CUDA kernels of libcollectives_cuda, launched on
 *   the buffers' device; the call waits for the kernel before it returns.
 * Both run the same per-element math (native/ops/elementwise_math.h), so a
 * host step and a device step give the same float32 bits.
 * Synchronous either way, in place where noted. The arrays of one call are
 * all host arrays or all DeviceBuffers on one device: mixing them is a
 * TypeError naming the argument. On device, a freed buffer is DESTROYED and
 * a machine without the CUDA kernels gives BACKEND_UNAVAILABLE with the reason
 * (backends().cuda.kernels.reason).
 */

/** A float32 array argument: host memory, or a DeviceBuffer of float32. */
export type Float32Buffer = Float32Array | DeviceBuffer;

export interface AdamWOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (default 1e-2, as torch.optim.AdamW). */
  weightDecay?: number;
  /** This step's number, counted from 1 (bias correction). Required. */
  step: number;
}

export interface NesterovOptions {
  /** Outer learning rate (DiLoCo uses 0.7). Required. */
  lr: number;
  /** Momentum (DiLoCo uses 0.9). Required. */
  momentum: number;
}

export interface CastOptions {
  /** Needed for a Uint16Array input: 'float16' or 'bfloat16'. */
  inputDtype?: DType;
  /** Needed for a Uint16Array output: 'float16' or 'bfloat16'. */
  outputDtype?: DType;
}

function ops(): NativeOps {
  return loadAddon().ops;
}

function checkNumber(name: string, v: unknown, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number') throw argTypeError(name, 'a number', v);
  if (!Number.isFinite(v)) throw argRangeError(name, 'a finite number', v);
  return v;
}

function checkFraction(name: string, v: unknown, fallback: number): number {
  const x = checkNumber(name, v, fallback);
  if (!(x >= 0 && x < 1)) throw argRangeError(name, 'a number in [0, 1)', x);
  return x;
}

function checkFloat32(name: string, v: unknown, length?: number): Float32Array {
  const expected = length === undefined ? 'a Float32Array' : `a Float32Array of ${length} elements`;
  if (!(v instanceof Float32Array)) throw argTypeError(name, expected, v);
  checkArray(name, v);
  if (length !== undefined && v.length !== length) throw argRangeError(name, expected, v);
  return v;
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function checkApart(named: Array<[string, ArrayBufferView]>): void {
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      if (overlaps(named[i][1], named[j][1])) {
        throw argRangeError(named[j][0], `memory apart from ${named[i][0]}`, 'an overlapping array');
      }
    }
  }
}

/**
 * One AdamW step in place, with torch.optim.AdamW's semantics:
 * p *= 1 - lr·wd; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
 * p -= lr/(1-β1^t) · m / (√v / √(1-β2^t) + eps). All float32.
 */
export function adamwStep(param: Float32Buffer, grad: Float32Buffer, expAvg: Float32Buffer, expAvgSq: Float32Buffer, options: AdamWOptions): void {
  const named: [string, unknown][] = [['param', param], ['grad', grad], ['expAvg', expAvg], ['expAvgSq', expAvgSq]];
  if (onDevice(...named)) {
    const [p, g, m, v] = checkFloat32Buffers('adamwStep', named).map((b) => DeviceBuffer.native(b));
    const a = adamwArgs(options);
    deviceCall('adamwStep', () => deviceOps().adamwStep(p, g, m, v, ...a));
    return;
  }
  const p = checkFloat32('param', param);
  const g = checkFloat32('grad', grad, p.length);
  const m = checkFloat32('expAvg', expAvg, p.length);
  const v = checkFloat32('expAvgSq', expAvgSq, p.length);
  checkApart([['param', p], ['grad', g], ['expAvg', m], ['expAvgSq', v]]);
  ops().adamwStep(p, g, m, v, ...adamwArgs(options));
}

/** lr, beta1, beta2, eps, weightDecay, step from the options, defaults filled in. */
function adamwArgs(options: AdamWOptions): [number, number, number, number, number, number] {
  if (options === undefined) throw argTypeError('options', 'an options object with step', options);
  const o = checkOptions<AdamWOptions>('options', options, ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'step']);
  const lr = checkNumber('options.lr', o.lr, 1e-3);
  const beta1 = checkFraction('options.beta1', o.beta1, 0.9);
  const beta2 = checkFraction('options.beta2', o.beta2, 0.999);
  const eps = checkNumber('options.eps', o.eps, 1e-8);
  const wd = checkNumber('options.weightDecay', o.weightDecay, 1e-2);
  const step = checkInt('options.step', o.step, 1, Number.MAX_SAFE_INTEGER);
  return [lr, beta1, beta2, eps, wd, step];
}

/**
 * DiLoCo's outer step in place: SGD with Nesterov momentum
 * (torch.optim.SGD(nesterov=True, dampening=0)) on the pseudo-gradient
 * delta = parameters before the inner steps − averaged parameters after them:
 * buf = μ·buf + delta; p -= lr·(delta + μ·buf). `momentumBuffer` starts at zero.
 */
export function nesterovStep(param: Float32Buffer, delta: Float32Buffer, momentumBuffer: Float32Buffer, options: NesterovOptions): void {
  const named: [string, unknown][] = [['param', param], ['delta', delta], ['momentumBuffer', momentumBuffer]];
  if (onDevice(...named)) {
    const [p, d, b] = checkFloat32Buffers('nesterovStep', named).map((x) => DeviceBuffer.native(x));
    const [lr, mu] = nesterovArgs(options);
    deviceCall('nesterovStep', () => deviceOps().nesterovStep(p, d, b, lr, mu));
    return;
  }
  const p = checkFloat32('param', param);
  const d = checkFloat32('delta', delta, p.length);
  const b = checkFloat32('momentumBuffer', momentumBuffer, p.length);
  checkApart([['param', p], ['delta', d], ['momentumBuffer', b]]);
  const [lr, mu] = nesterovArgs(options);
  ops().nesterovStep(p, d, b, lr, mu);
}

function nesterovArgs(options: NesterovOptions): [number, number] {
  if (options === undefined) throw argTypeError('options', 'an options object with lr and momentum', options);
  const o = checkOptions<NesterovOptions>('options', options, ['lr', 'momentum']);
  return [checkNumber('options.lr', o.lr), checkNumber('options.momentum', o.momentum)];
}

/** y += a·x in place (float32). x may be y itself (the same array or the same DeviceBuffer view). */
export function axpy(a: number, x: Float32Buffer, y: Float32Buffer): void {
  const alpha = checkNumber('a', a);
  if (onDevice(['x', x], ['y', y])) {
    const [xs, ys] = checkFloat32Buffers('axpy', [['x', x], ['y', y]]).map((b) => DeviceBuffer.native(b));
    deviceCall('axpy', () => deviceOps().axpy(alpha, xs, ys));
    return;
  }
  const xs = checkFloat32('x', x);
  const ys = checkFloat32('y', y, xs.length);
  if (overlaps(xs, ys) && !(xs.buffer === ys.buffer && xs.byteOffset === ys.byteOffset)) {
    throw argRangeError('y', 'the same array as x or memory apart from it', 'a partly overlapping array');
  }
  ops().axpy(alpha, xs, ys);
}

/** x *= a in place (float32). The scalar comes first, as in axpy (and BLAS's scal). */
export function scale(a: number, x: Float32Buffer): void {
  if (onDevice(['x', x])) {
    const xs = DeviceBuffer.native(checkDeviceBuffer('scale', 'x', x, ['float32']));
    const alpha = checkNumber('a', a);
    deviceCall('scale', () => deviceOps().scale(xs, alpha));
    return;
  }
  const xs = checkFloat32('x', x);
  ops().scale(xs, checkNumber('a', a));
}

function castDType(name: string, a: HostArray, dtype: unknown): DType {
  const d = resolveDType(name, a, dtype);
  if (d !== 'float32' && d !== 'float16' && d !== 'bfloat16') throw argTypeError(name, 'float32, float16 or bfloat16 data', `${d} data`);
  return d;
}

/**
 * Converts between float32, float16 and bfloat16 (Uint16Array holds the
 * half types' bits) with round-to-nearest-even; NaN stays NaN, overflow
 * becomes ±Infinity. `output` must have the input's length. On DeviceBuffers
 * the dtypes are the buffers' own (the options may repeat them).
 */
export function cast(input: HostArray | DeviceBuffer, output: HostArray | DeviceBuffer, options?: CastOptions): void {
  const o = checkOptions<CastOptions>('options', options, ['inputDtype', 'outputDtype']);
  if (onDevice(['input', input], ['output', output])) {
    const floats = ['float32', 'float16', 'bfloat16'] as const;
    const inp = checkDeviceBuffer('cast', 'input', input, floats);
    const out = checkDeviceBuffer('cast', 'output', output, floats, { name: 'input', buffer: inp, length: inp.length });
    checkSameDType('options.inputDtype', o.inputDtype, inp);
    checkSameDType('options.outputDtype', o.outputDtype, out);
    deviceCall('cast', () => deviceOps().cast(DeviceBuffer.native(inp), DeviceBuffer.native(out)));
    return;
  }
  const inp = checkArray('input', input as HostArray);
  const out = checkArray('output', output as HostArray);
  const it = castDType('input', inp, o.inputDtype);
  const ot = castDType('output', out, o.outputDtype);
  if (out.length !== inp.length) throw argRangeError('output', `${inp.length} elements (the input's length)`, out.length);
  checkApart([['input', inp], ['output', out]]);
  ops().cast(inp, DTYPE_CODE[it], out, DTYPE_CODE[ot]);
}
