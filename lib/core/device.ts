import { backends } from './backends';
import { DTYPES, DTYPE_CODE, DTYPE_BYTES, resolveDType, type DType, type HostArray } from './dtypes';
import { argRangeError, argTypeError, CollectiveError, ErrorCode, knownCode } from './errors';
import { checkAttached } from './attach';
import { checkOptions } from './options';
import type { NativeDeviceBuffer } from './addon';
import { loadAddon } from './loader';

export interface DeviceBufferOptions {
  /** The CUDA device, from 0 (the default) to devices − 1. */
  device?: number;
}

export interface DeviceCopyOptions {
  /** The first element of the device buffer copied to or from (default 0). */
  offset?: number;
}

const NATIVE = Symbol('native');

const ARRAY_TYPES: Record<DType, new (n: number) => HostArray> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int32: Int32Array,
  int64: BigInt64Array,
};

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int32: [-2147483648, 2147483647],
};

function checkIndex(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw argTypeError(name, 'an integer', v);
  if (v < min || v > max) throw argRangeError(name, `an integer from ${min} to ${max}`, v);
  return v;
}


/** An error from the addon as a CollectiveError (or the TypeError / RangeError it is). */
function fromNative(err: unknown, operation: string): Error {
  if (err instanceof TypeError || err instanceof RangeError || err instanceof CollectiveError) return err;
  const e = err as { code?: unknown; message?: string };
  return new CollectiveError(knownCode(e?.code), `${operation}: ${e?.message ?? String(err)}`, -1, operation);
}

/** @internal runs a synchronous native call on device memory, its errors as CollectiveError named for `operation`. */
export function deviceCall<T>(operation: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw fromNative(err, operation);
  }
}

function call<T>(operation: string, f: () => T): T {
  return deviceCall(`DeviceBuffer.${operation}`, f);
}

/**
 * Device memory of a dtype and length on one CUDA device.
 *
 * `new DeviceBuffer('float32', 1024, { device: 0 })` allocates (uninitialized
 * memory; `fill(0)` to clear it). Copies and fills are synchronous. Release
 * the memory with `free()`; a buffer that is garbage-collected releases it too,
 * but the garbage collector does not see device memory, so free explicitly.
 * `free()` again is a no-op; any other use after it throws CollectiveError
 * DESTROYED. Views from `subarray()` share the memory: they keep it allocated
 * while they are reachable, and freeing the parent makes them unusable.
 * Freeing a buffer that an in-flight collective uses is safe: the memory is
 * released when the last such collective settles.
 *
 * Without a usable GPU the constructor throws CollectiveError
 * BACKEND_UNAVAILABLE with the reason `backends().cuda.reason` gives.
 */
export class DeviceBuffer {
  readonly dtype: DType;
  readonly device: number;
  private readonly [NATIVE]: NativeDeviceBuffer;

  constructor(dtype: DType, length: number, options?: DeviceBufferOptions) {
    if (typeof dtype !== 'string' || !(dtype in DTYPE_CODE)) throw argTypeError('dtype', `one of ${DTYPES.join(', ')}`, dtype);
    checkIndex('length', length, 0, Math.floor(Number.MAX_SAFE_INTEGER / DTYPE_BYTES[dtype]));
    const opts = checkOptions<DeviceBufferOptions>('options', options, ['device']);
    const device = opts.device === undefined ? 0 : checkIndex('options.device', opts.device, 0, 2 ** 31 - 1);
    const cuda = backends().cuda;
    if (!cuda.available) {
      throw new CollectiveError(ErrorCode.BACKEND_UNAVAILABLE, `DeviceBuffer: CUDA is not available: ${cuda.reason}`, -1, 'DeviceBuffer');
    }
    if (device >= (cuda.devices ?? 0)) {
      throw argRangeError('options.device', `a device from 0 to ${(cuda.devices ?? 1) - 1}`, device);
    }
    this.dtype = dtype;
    this.device = device;
    const Native = loadAddon().gpu.DeviceBuffer;
    this[NATIVE] = call('constructor', () => new Native(DTYPE_CODE[dtype], length, device));
  }

  /** Elements. */
  get length(): number {
    return this[NATIVE].length;
  }
  get byteLength(): number {
    return this[NATIVE].byteLength;
  }
  /** Bytes from the start of the allocation (non-zero for a view). */
  get byteOffset(): number {
    return this[NATIVE].byteOffset;
  }
  /** True after free(), on this buffer or (for a view) on its parent. */
  get freed(): boolean {
    return this[NATIVE].freed;
  }

  private checkUsable(operation: string): void {
    if (this[NATIVE].freed) {
      throw new CollectiveError(ErrorCode.DESTROYED, `DeviceBuffer.${operation}: the DeviceBuffer was freed`, -1, `DeviceBuffer.${operation}`);
    }
  }

  private checkHost(name: string, a: unknown): HostArray {
    if (!ArrayBuffer.isView(a) || a instanceof DataView) throw argTypeError(name, `a typed array for dtype ${this.dtype}`, a);
    resolveDType(name, a as HostArray, this.dtype);
    checkAttached(name, a);
    return a as HostArray;
  }

  private checkOffset(options: unknown, count: number, name: string): number {
    const opts = checkOptions<DeviceCopyOptions>('options', options, ['offset']);
    const offset = opts.offset === undefined ? 0 : checkIndex('options.offset', opts.offset, 0, this.length);
    if (count > this.length - offset) {
      throw argRangeError(name, `at most ${this.length - offset} elements (length ${this.length} from offset ${offset})`, `${count} elements`);
    }
    return offset;
  }

  /** Copies `source` into the buffer at `options.offset` (elements). Returns this buffer. */
  copyFrom(source: HostArray, options?: DeviceCopyOptions): this {
    this.checkUsable('copyFrom');
    const src = this.checkHost('source', source);
    const offset = this.checkOffset(options, src.length, 'source');
    call('copyFrom', () => this[NATIVE].copyFrom(src, offset));
    return this;
  }

  /**
   * Copies the buffer from `options.offset` into `target` (as many elements as
   * it holds), or into a new typed array of the rest of the buffer when no
   * target is given. Returns the host array.
   */
  copyTo<T extends HostArray>(target?: T, options?: DeviceCopyOptions): T {
    this.checkUsable('copyTo');
    if (target === undefined) {
      const offset = this.checkOffset(options, 0, 'target');
      const out = new ARRAY_TYPES[this.dtype](this.length - offset) as T;
      return call('copyTo', () => this[NATIVE].copyTo(out, offset));
    }
    const dst = this.checkHost('target', target) as T;
    const offset = this.checkOffset(options, dst.length, 'target');
    return call('copyTo', () => this[NATIVE].copyTo(dst, offset));
  }

  /**
   * Sets every element to `value`: a number (rounded to the dtype for
   * float16 / bfloat16 / float32), or for int64 a bigint or a safe integer.
   * Returns this buffer.
   */
  fill(value: number | bigint): this {
    this.checkUsable('fill');
    if (this.dtype === 'int64') {
      if (typeof value === 'bigint') {
        if (BigInt.asIntN(64, value) !== value) throw argRangeError('value', 'a bigint that fits in int64', value);
      } else if (!Number.isSafeInteger(value)) {
        throw argTypeError('value', 'a bigint or a safe integer for int64', value);
      }
    } else if (typeof value !== 'number') {
      throw argTypeError('value', `a number for ${this.dtype}`, value);
    } else {
      const range = INT_RANGE[this.dtype];
      if (range && !(Number.isInteger(value) && value >= range[0] && value <= range[1])) {
        throw argRangeError('value', `an integer from ${range[0]} to ${range[1]} for ${this.dtype}`, value);
      }
    }
    call('fill', () => this[NATIVE].fill(value));
    return this;
  }

  /**
   * A view of elements [begin, end) sharing this buffer's memory. Unlike a
   * typed array's subarray, indexes are not clamped: out of range is a
   * RangeError. Negative indexes are not accepted.
   */
  subarray(begin = 0, end: number = this.length): DeviceBuffer {
    this.checkUsable('subarray');
    checkIndex('begin', begin, 0, this.length);
    checkIndex('end', end, begin, this.length);
    const Native = loadAddon().gpu.DeviceBuffer;
    const view = call('subarray', () => new Native(this[NATIVE], begin, end));
    // A view skips the constructor: it allocates nothing.
    return Object.assign(Object.create(DeviceBuffer.prototype) as object, {
      dtype: this.dtype,
      device: this.device,
      [NATIVE]: view,
    }) as unknown as DeviceBuffer;
  }

  /**
   * Releases the device memory now. Views over it become unusable. On a view,
   * only the view is released (the memory stays with its parent). A second
   * call is a no-op.
   */
  free(): void {
    this[NATIVE].free();
  }

  /** @internal the native buffer, for the NCCL backend. */
  static native(b: DeviceBuffer): NativeDeviceBuffer {
    return b[NATIVE];
  }
}

/**
 * @internal Whether a call's buffers are DeviceBuffers (device code: NCCL, the CUDA kernels)
 * rather than host arrays (Gloo, host loops); throws INVALID_ARGUMENT naming both when one call
 * mixes them. Undefined entries are absent options.
 */
export function onDevice(...args: [string, unknown][]): boolean {
  const present = args.filter(([, v]) => v !== undefined);
  const device = present.filter(([, v]) => v instanceof DeviceBuffer);
  if (device.length === 0) return false;
  const host = present.find(([, v]) => !(v instanceof DeviceBuffer));
  if (host) {
    const [d] = device[0];
    const e = new TypeError(
      `${host[0]}: expected a DeviceBuffer like ${d} (host arrays and DeviceBuffers cannot be mixed in one call), got ${describeBuffer(host[1])}`,
    );
    (e as TypeError & { code: string }).code = ErrorCode.INVALID_ARGUMENT;
    throw e;
  }
  return true;
}

function describeBuffer(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v;
}
