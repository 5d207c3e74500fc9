/**
 * The few buffer operations the training layer needs on host and device memory alike. A
 * DeviceBuffer has no device-to-device copy in the public API, so copies between buffers go
 * through collectives/ops (fill + axpy), on host too: one sequence, the same bits on both.
 */
import { DeviceBuffer } from '../index';
import { axpy, type Float32Buffer } from '../ops';

export type { Float32Buffer };

/** A zero-filled float32 buffer: host memory, or a DeviceBuffer on `device` when it is a number. */
export function allocate(length: number, device: number | undefined): Float32Buffer {
  if (device === undefined) return new Float32Array(length);
  return new DeviceBuffer('float32', length, { device }).fill(0);
}

/** The device of a buffer, undefined for host memory. */
export function deviceOf(b: Float32Buffer): number | undefined {
  return b instanceof DeviceBuffer ? b.device : undefined;
}

/** A view of [begin, end), sharing memory. */
export function view(b: Float32Buffer, begin: number, end: number): Float32Buffer {
  return b.subarray(begin, end);
}

export function fillZero(b: Float32Buffer): void {
  b.fill(0);
}

/** dst = src (same length). -0 in src becomes +0 (0 + 1·x). */
export function copyBuffer(src: Float32Buffer, dst: Float32Buffer): void {
  dst.fill(0);
  axpy(1, src, dst);
}

/** A host copy of a buffer's contents. */
export function toHost(b: Float32Buffer): Float32Array {
  return b instanceof DeviceBuffer ? b.copyTo(new Float32Array(b.length)) : b.slice();
}

/** Copies a host array into a buffer of the same length. */
export function fromHost(src: Float32Array, dst: Float32Buffer): void {
  if (dst instanceof DeviceBuffer) dst.copyFrom(src);
  else dst.set(src);
}

/** Releases device memory; nothing to do on host. */
export function release(b: Float32Buffer): void {
  if (b instanceof DeviceBuffer) b.free();
}
