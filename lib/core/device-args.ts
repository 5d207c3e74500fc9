import { DeviceBuffer } from './device';
import type { DType } from './dtypes';
import { CollectiveError, ErrorCode, argRangeError, argTypeError } from './errors';
import type { NativeDeviceOps } from './addon';
import { loadAddon } from './loader';

/**
 * Argument checks shared by the operations that take DeviceBuffers in place of host arrays
 * (lib/ops/, lib/core/quantized.ts). They run after onDevice() has said the call is on device.
 * Overlap between buffers is checked natively (only the addon sees which allocation a view is of).
 */

/** @internal the device operations of the addon. */
export function deviceOps(): NativeDeviceOps {
  return loadAddon().gpu.ops;
}

/**
 * @internal A usable DeviceBuffer of one of `dtypes` (and of `length` elements, on `like`'s
 * device when given); DESTROYED when it was freed.
 */
export function checkDeviceBuffer(
  operation: string,
  name: string,
  v: unknown,
  dtypes: readonly DType[],
  like?: { name: string; buffer: DeviceBuffer; length?: number },
): DeviceBuffer {
  const what = `a DeviceBuffer of ${dtypes.join(', ')}`;
  if (!(v instanceof DeviceBuffer)) throw argTypeError(name, what, v);
  if (v.freed) throw new CollectiveError(ErrorCode.DESTROYED, `${operation}: ${name}: the DeviceBuffer was freed`, -1, operation);
  if (!dtypes.includes(v.dtype)) throw argTypeError(name, what, `a DeviceBuffer of ${v.dtype}`);
  if (like !== undefined) {
    if (like.length !== undefined && v.length !== like.length) throw argRangeError(name, `a DeviceBuffer of ${like.length} elements`, v.length);
    if (v.device !== like.buffer.device) throw argRangeError(name, `a DeviceBuffer on device ${like.buffer.device} (as ${like.name})`, `one on device ${v.device}`);
  }
  return v;
}

/** @internal float32 DeviceBuffers of one length on one device (the first one's), for the optimizer ops. */
export function checkFloat32Buffers(operation: string, named: [string, unknown][]): DeviceBuffer[] {
  const first = checkDeviceBuffer(operation, named[0][0], named[0][1], ['float32']);
  const like = { name: named[0][0], buffer: first, length: first.length };
  return named.map(([name, v], i) => (i === 0 ? first : checkDeviceBuffer(operation, name, v, ['float32'], like)));
}

/** @internal a dtype option given with a DeviceBuffer must be the buffer's own. */
export function checkSameDType(name: string, dtype: unknown, buffer: DeviceBuffer): void {
  if (dtype !== undefined && dtype !== buffer.dtype) throw argTypeError(name, `the DeviceBuffer's dtype (${buffer.dtype}) or nothing`, dtype);
}
