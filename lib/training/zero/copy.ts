import { copyBuffer, type Float32Buffer } from '../buffers';

/**
 * dst = src between buffers of one kind. On host one memcpy (TypedArray.set); a DeviceBuffer
 * has no device-to-device copy in the public API, so there it is buffers.ts's fill + axpy
 * (which turns -0 into +0: these copies carry gradients and weights on their way to a
 * quantizer, where the sign of zero is lost anyway).
 */
export function copyInto(src: Float32Buffer, dst: Float32Buffer): void {
  if (src instanceof Float32Array && dst instanceof Float32Array) dst.set(src);
  else copyBuffer(src, dst);
}
