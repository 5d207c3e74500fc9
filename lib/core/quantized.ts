import { argRangeError, argTypeError } from './errors';
import { DTYPE_CODE, REDUCE_OP_CODE, type DType, type HostArray, checkArray, resolveDType } from './dtypes';
import type { NativeDeviceQuantizedArgs, NativeQuant, NativeQuantizedArgs } from './addon';
import { loadAddon } from './loader';
import { type CallOptions, checkInt, checkOptions, checkTimeout } from './options';
import { checkLengths, residualLength } from './shapes';
import { DeviceBuffer, deviceCall, onDevice } from './device';
import { checkDeviceBuffer, checkSameDType, deviceOps } from './device-args';

/**
 * Blockwise formats. Each block of `blockSize` elements shares one float32
 * scale = absmax / max; int8 and int4 are symmetric integers (±127, ±7), the
 * fp8 formats are OCP e4m3 (max 448) and e5m2 (max 57344). Wire layout:
 * native/quant/FORMAT.md.
 */
export type QuantFormat = 'int8' | 'int4' | 'fp8e4m3' | 'fp8e5m2';

const FORMAT_CODE: Record<QuantFormat, number> = { int8: 0, int4: 1, fp8e4m3: 2, fp8e5m2: 3 };
export const QUANT_FORMATS = Object.keys(FORMAT_CODE) as QuantFormat[];

/** The default block size (elements per scale), chosen by bench/codec-throughput.js. */
export const DEFAULT_BLOCK_SIZE = 256;
const MAX_BLOCK_SIZE = 1 << 20;

/** Stochastic rounding: unbiased, reproducible from the seed (and the rank and element index). */
export interface StochasticRounding {
  seed: number | bigint;
}

export interface QuantOptions {
  /** Default 'int8'. */
  format?: QuantFormat;
  /** Elements per scale: a multiple of 8 from 8 to 2^20 (default 256). */
  blockSize?: number;
  /** Rounds stochastically instead of to nearest-even. */
  stochastic?: StochasticRounding;
  /**
   * Error feedback: the caller's residual (Float32Array, zeros at first). It is
   * added to the input, and replaced by what this quantization lost.
   */
  errorFeedback?: Float32Array;
  /** Needed for Uint16Array data: 'float16' or 'bfloat16'. */
  dtype?: DType;
}

export interface QuantizeOptions extends QuantOptions {
  /** Where the quantized bytes go (quantizedSize() bytes); allocated when absent. */
  output?: Uint8Array;
}

/** One quantized tensor: the wire bytes and views of their two parts. */
export interface Quantized {
  format: QuantFormat;
  blockSize: number;
  /** Elements. */
  count: number;
  /** The whole message: scales, then payload, padded to 4 bytes. */
  bytes: Uint8Array;
  /** One scale per block (a view of `bytes` when it is 4-byte aligned, else a copy). */
  scales: Float32Array;
  /** The packed values (int4: element 2i in the low nibble of byte i). */
  payload: Uint8Array;
}

/**
 * quantize() on a DeviceBuffer: the same options, with the output (a uint8 DeviceBuffer of
 * quantizedSize() bytes starting at a multiple of 4 bytes) and the error-feedback residual
 * (a float32 DeviceBuffer of the input's length) on the input's device.
 */
export interface DeviceQuantizeOptions extends Omit<QuantizeOptions, 'output' | 'errorFeedback'> {
  /** Allocated on the input's device when absent. */
  output?: DeviceBuffer;
  errorFeedback?: DeviceBuffer;
}

/** One quantized tensor in device memory: the wire bytes as a uint8 DeviceBuffer. */
export interface DeviceQuantized {
  format: QuantFormat;
  blockSize: number;
  count: number;
  bytes: DeviceBuffer;
}

export interface DeviceDequantizeOptions {
  /** Where the values go (count elements, float32 / float16 / bfloat16); a new DeviceBuffer of `dtype` when absent. */
  output?: DeviceBuffer;
  /** Default float32 (or the output's). */
  dtype?: DType;
}

/** What dequantize needs: a Quantized, or the same fields around received bytes. */
export interface QuantizedLike {
  format: QuantFormat;
  blockSize?: number;
  count: number;
  bytes: Uint8Array;
}

export interface DequantizeOptions {
  /** Where the values go (count elements); a new array of `dtype` when absent. */
  output?: HostArray;
  /** Default float32 (or the output's). */
  dtype?: DType;
}

/** The memory a call's buffers live in: host typed arrays, or DeviceBuffers. */
export type CollectiveMemory = HostArray | DeviceBuffer;

/**
 * The options of the quantized collectives, for buffers of type B: the error-feedback residual
 * (and all-reduce's out-of-place output) live where the buffers do: a Float32Array and host
 * arrays for host arrays, float32 and same-dtype DeviceBuffers for DeviceBuffers.
 */
export interface QuantizedCallOptions<B extends CollectiveMemory = HostArray> extends Omit<QuantOptions, 'errorFeedback'>, CallOptions {
  /**
   * Error feedback: the caller's residual (zeros at first), float32, of the length
   * errorFeedbackLength() gives. It is added to the input, and replaced by what this
   * quantization lost.
   */
  errorFeedback?: B extends DeviceBuffer ? DeviceBuffer : Float32Array;
}

export interface QuantizedReduceOptions<B extends CollectiveMemory = HostArray> extends QuantizedCallOptions<B> {
  /** 'sum' (default) or 'avg'. */
  op?: 'sum' | 'avg';
}

export interface QuantizedAllReduceOptions<B extends CollectiveMemory = HostArray> extends QuantizedReduceOptions<B> {
  /** Out-of-place: the result goes here and the input is left unchanged. */
  output?: B extends DeviceBuffer ? DeviceBuffer : HostArray;
}

function quant(): NativeQuant {
  return loadAddon().quant;
}

function checkFormat(name: string, v: unknown): QuantFormat {
  if (v === undefined) return 'int8';
  if (typeof v !== 'string' || !(v in FORMAT_CODE)) throw argTypeError(name, `one of ${QUANT_FORMATS.join(', ')}`, v);
  return v as QuantFormat;
}

function checkBlockSize(name: string, v: unknown): number {
  if (v === undefined) return DEFAULT_BLOCK_SIZE;
  const b = checkInt(name, v, 8, MAX_BLOCK_SIZE);
  if (b % 8 !== 0) throw argRangeError(name, 'a multiple of 8', b);
  return b;
}

function checkSeed(name: string, v: unknown): bigint | null {
  if (v === undefined) return null;
  const o = checkOptions<StochasticRounding>(name, v, ['seed']);
  const s = o.seed;
  if (typeof s === 'bigint') {
    if (s < 0n || s >= 1n << 64n) throw argRangeError(`${name}.seed`, 'a BigInt from 0 to 2^64 - 1', s);
    return s;
  }
  return BigInt(checkInt(`${name}.seed`, s, 0, Number.MAX_SAFE_INTEGER));
}

function quantDType(name: string, a: HostArray, dtype: unknown): DType {
  const d = resolveDType(name, a, dtype);
  if (d !== 'float32' && d !== 'float16' && d !== 'bfloat16') {
    throw argTypeError(name, 'float32, float16 or bfloat16 data', `${d} data`);
  }
  return d;
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function checkResidual(name: string, v: unknown, length: number, others: ArrayBufferView[]): Float32Array | null {
  if (v === undefined) return null;
  if (!(v instanceof Float32Array)) throw argTypeError(name, `a Float32Array of ${length} elements`, v);
  checkArray(name, v);
  if (v.length !== length) throw argRangeError(name, `a Float32Array of ${length} elements`, v);
  if (others.some((o) => overlaps(v, o))) throw argRangeError(name, 'memory of its own', 'one that overlaps the input or the output');
  return v;
}

/** Bytes of one quantized message of `count` elements. */
export function quantizedSize(count: number, options?: { format?: QuantFormat; blockSize?: number }): number {
  const o = checkOptions<{ format?: QuantFormat; blockSize?: number }>('options', options, ['format', 'blockSize']);
  const n = checkInt('count', count, 0, Number.MAX_SAFE_INTEGER);
  return quant().quantizedSize(n, FORMAT_CODE[checkFormat('options.format', o.format)], checkBlockSize('options.blockSize', o.blockSize));
}

/**
 * Quantizes float32 / float16 / bfloat16 data into one message (scales, then
 * payload). Synchronous: on host arrays pure computation on this thread; on a
 * DeviceBuffer a CUDA kernel on its device, waited for before returning, whose
 * bytes equal the host's for the same input and options (stochastic rounding
 * and error feedback included). A freed buffer is DESTROYED; without the CUDA
 * kernels it is BACKEND_UNAVAILABLE (backends().cuda.kernels.reason).
 */
export function quantize(input: DeviceBuffer, options?: DeviceQuantizeOptions): DeviceQuantized;
export function quantize(input: HostArray, options?: QuantizeOptions): Quantized;
export function quantize(input: HostArray | DeviceBuffer, options?: QuantizeOptions | DeviceQuantizeOptions): Quantized | DeviceQuantized {
  const o = checkOptions<QuantizeOptions | DeviceQuantizeOptions>('options', options, ['format', 'blockSize', 'stochastic', 'errorFeedback', 'dtype', 'output']);
  if (onDevice(['input', input], ['options.output', o.output], ['options.errorFeedback', o.errorFeedback])) {
    return quantizeOnDevice(input as DeviceBuffer, o as DeviceQuantizeOptions);
  }
  return quantizeOnHost(input as HostArray, o as QuantizeOptions);
}

const FLOATS = ['float32', 'float16', 'bfloat16'] as const;

function quantizeOnDevice(input: DeviceBuffer, o: DeviceQuantizeOptions): DeviceQuantized {
  const inp = checkDeviceBuffer('quantize', 'input', input, FLOATS);
  checkSameDType('options.dtype', o.dtype, inp);
  const format = checkFormat('options.format', o.format);
  const blockSize = checkBlockSize('options.blockSize', o.blockSize);
  const seed = checkSeed('options.stochastic', o.stochastic);
  const size = quant().quantizedSize(inp.length, FORMAT_CODE[format], blockSize);
  let residual: DeviceBuffer | null = null;
  if (o.errorFeedback !== undefined) {
    residual = checkDeviceBuffer('quantize', 'options.errorFeedback', o.errorFeedback, ['float32'], { name: 'input', buffer: inp, length: inp.length });
  }
  let bytes: DeviceBuffer;
  const allocated = o.output === undefined;
  if (allocated) {
    bytes = new DeviceBuffer('uint8', size, { device: inp.device });
  } else {
    bytes = checkDeviceBuffer('quantize', 'options.output', o.output, ['uint8'], { name: 'input', buffer: inp });
    if (bytes.length !== size) throw argRangeError('options.output', `a DeviceBuffer of ${size} bytes (quantizedSize)`, bytes.length);
    if (bytes.byteOffset % 4 !== 0) throw argRangeError('options.output', 'a DeviceBuffer starting at a multiple of 4 bytes (the scales are float32)', `byteOffset ${bytes.byteOffset}`);
  }
  const nativeResidual = residual === null ? null : DeviceBuffer.native(residual);
  try {
    deviceCall('quantize', () =>
      deviceOps().quantize(DeviceBuffer.native(inp), FORMAT_CODE[format], blockSize, DeviceBuffer.native(bytes), nativeResidual, seed),
    );
  } catch (err) {
    if (allocated) bytes.free(); // device memory: not left to the garbage collector
    throw err;
  }
  return { format, blockSize, count: inp.length, bytes };
}

function quantizeOnHost(input: HostArray, o: QuantizeOptions): Quantized {
  const inp = checkArray('input', input);
  const dtype = quantDType('input', inp, o.dtype);
  const format = checkFormat('options.format', o.format);
  const blockSize = checkBlockSize('options.blockSize', o.blockSize);
  const seed = checkSeed('options.stochastic', o.stochastic);
  const q = quant();
  const size = q.quantizedSize(inp.length, FORMAT_CODE[format], blockSize);
  let bytes: Uint8Array;
  if (o.output === undefined) {
    bytes = new Uint8Array(size);
  } else {
    if (!(o.output instanceof Uint8Array)) throw argTypeError('options.output', `a Uint8Array of ${size} bytes`, o.output);
    checkArray('options.output', o.output);
    if (o.output.byteLength !== size) throw argRangeError('options.output', `a Uint8Array of ${size} bytes (quantizedSize)`, o.output);
    if (overlaps(o.output, inp)) throw argRangeError('options.output', 'memory apart from the input', 'an overlapping array');
    bytes = o.output;
  }
  const residual = checkResidual('options.errorFeedback', o.errorFeedback, inp.length, [inp, bytes]);
  q.quantize(inp, DTYPE_CODE[dtype], FORMAT_CODE[format], blockSize, bytes, residual, seed);
  return view(format, blockSize, inp.length, bytes);
}

function dequantizeOnDevice(bytes: DeviceBuffer, format: QuantFormat, blockSize: number, count: number, o: DeviceDequantizeOptions): DeviceBuffer {
  const b = checkDeviceBuffer('dequantize', 'q.bytes', bytes, ['uint8']);
  const size = quant().quantizedSize(count, FORMAT_CODE[format], blockSize);
  if (b.length !== size) throw argRangeError('q.bytes', `${size} bytes (quantizedSize of ${count} elements)`, b.length);
  if (b.byteOffset % 4 !== 0) throw argRangeError('q.bytes', 'a DeviceBuffer starting at a multiple of 4 bytes (the scales are float32)', `byteOffset ${b.byteOffset}`);
  let out: DeviceBuffer;
  const allocated = o.output === undefined;
  if (allocated) {
    const dtype = o.dtype === undefined ? 'float32' : o.dtype;
    if (!(FLOATS as readonly unknown[]).includes(dtype)) throw argTypeError('options.dtype', "'float32', 'float16' or 'bfloat16'", o.dtype);
    out = new DeviceBuffer(dtype, count, { device: b.device });
  } else {
    out = checkDeviceBuffer('dequantize', 'options.output', o.output, FLOATS, { name: 'q.bytes', buffer: b, length: count });
    checkSameDType('options.dtype', o.dtype, out);
  }
  try {
    deviceCall('dequantize', () => deviceOps().dequantize(DeviceBuffer.native(b), count, FORMAT_CODE[format], blockSize, DeviceBuffer.native(out)));
  } catch (err) {
    if (allocated) out.free(); // device memory: not left to the garbage collector
    throw err;
  }
  return out;
}

function view(format: QuantFormat, blockSize: number, count: number, bytes: Uint8Array): Quantized {
  const blocks = Math.ceil(count / blockSize);
  const payloadBytes = format === 'int4' ? Math.ceil(count / 2) : count;
  let scales: Float32Array;
  if (bytes.byteOffset % 4 === 0) {
    scales = new Float32Array(bytes.buffer, bytes.byteOffset, blocks);
  } else {
    scales = new Float32Array(blocks);
    new Uint8Array(scales.buffer).set(bytes.subarray(0, 4 * blocks));
  }
  return { format, blockSize, count, bytes, scales, payload: bytes.subarray(4 * blocks, 4 * blocks + payloadBytes) };
}

/**
 * Turns a quantized message back into values (float32 unless told otherwise).
 * With the bytes in a DeviceBuffer (a DeviceQuantized) the values go to a
 * DeviceBuffer on its device, by a CUDA kernel waited for before returning.
 */
export function dequantize(q: DeviceQuantized, options?: DeviceDequantizeOptions): DeviceBuffer;
export function dequantize(q: QuantizedLike, options?: DequantizeOptions): HostArray;
export function dequantize(q: QuantizedLike | DeviceQuantized, options?: DequantizeOptions | DeviceDequantizeOptions): HostArray | DeviceBuffer {
  if (q === null || typeof q !== 'object') throw argTypeError('q', 'a quantized tensor ({ format, blockSize, count, bytes })', q);
  const o = checkOptions<DequantizeOptions | DeviceDequantizeOptions>('options', options, ['output', 'dtype']);
  const format = checkFormat('q.format', q.format);
  const blockSize = checkBlockSize('q.blockSize', q.blockSize);
  const count = checkInt('q.count', q.count, 0, Number.MAX_SAFE_INTEGER);
  if (onDevice(['q.bytes', q.bytes], ['options.output', o.output])) {
    return dequantizeOnDevice(q.bytes as DeviceBuffer, format, blockSize, count, o as DeviceDequantizeOptions);
  }
  if (!(q.bytes instanceof Uint8Array)) throw argTypeError('q.bytes', 'a Uint8Array', q.bytes);
  const native = quant();
  const size = native.quantizedSize(count, FORMAT_CODE[format], blockSize);
  if (q.bytes.byteLength !== size) throw argRangeError('q.bytes', `${size} bytes (quantizedSize of ${count} elements)`, q.bytes.byteLength);
  let out: HostArray;
  let dtype: DType;
  if (o.output === undefined) {
    dtype = o.dtype === undefined ? 'float32' : (o.dtype as DType);
    if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16') {
      throw argTypeError('options.dtype', "'float32', 'float16' or 'bfloat16'", o.dtype);
    }
    out = dtype === 'float32' ? new Float32Array(count) : new Uint16Array(count);
  } else {
    out = checkArray('options.output', o.output as HostArray);
    dtype = quantDType('options.output', out, o.dtype);
    if (out.length !== count) throw argRangeError('options.output', `${count} elements (q.count)`, out.length);
    if (overlaps(out, q.bytes)) throw argRangeError('options.output', 'memory apart from q.bytes', 'an overlapping array');
  }
  native.dequantize(q.bytes, count, FORMAT_CODE[format], blockSize, out, DTYPE_CODE[dtype]);
  return out;
}

export type QuantizedKind = 'allToAll' | 'reduceScatter' | 'allGather' | 'allReduce';

function quantizedOptionKeys(kind: QuantizedKind): string[] {
  const keys = ['format', 'blockSize', 'stochastic', 'errorFeedback', 'dtype', 'timeoutMs'];
  if (kind === 'reduceScatter' || kind === 'allReduce') keys.push('op');
  if (kind === 'allReduce') keys.push('output');
  return keys;
}

function quantizedOp(v: unknown): 'sum' | 'avg' {
  if (v === undefined) return 'sum';
  if (v !== 'sum' && v !== 'avg') throw argTypeError('options.op', "'sum' or 'avg' (a quantized reduction)", v);
  return v;
}

/**
 * The input and output lengths a quantized collective of `size` ranks needs (host arrays and
 * DeviceBuffers alike); returns the error-feedback residual's length.
 */
function checkQuantizedLengths(kind: QuantizedKind, size: number, inLength: number, outLength: number): number {
  checkLengths(kind, size, inLength, outLength);
  return residualLength(kind, inLength, size);
}

/**
 * Validates a quantized collective's arguments for a communicator of `size`
 * ranks; returns the native call's arguments after input and output.
 */
export function quantizedCallArgs(
  kind: QuantizedKind,
  size: number,
  input: unknown,
  output: unknown,
  options: QuantizedAllReduceOptions | undefined,
  defaultTimeoutMs: number,
): { input: HostArray; output: HostArray; args: NativeQuantizedArgs; wire: { sent: number; received: number } } {
  const o = checkOptions<QuantizedAllReduceOptions>('options', options, quantizedOptionKeys(kind));
  const inName = kind === 'allReduce' ? 'buffer' : 'input';
  const inp = checkArray(inName, input);
  const dtype = quantDType(inName, inp, o.dtype);
  const outName = kind === 'allReduce' ? 'options.output' : 'output';
  const out = kind === 'allReduce' && output === undefined ? inp : checkArray(outName, output);
  if (out !== inp) resolveDType(outName, out, dtype);
  const op = quantizedOp(o.op);
  const residualLength = checkQuantizedLengths(kind, size, inp.length, out.length);
  const residual = checkResidual('options.errorFeedback', o.errorFeedback, residualLength, [inp, out]);
  const format = checkFormat('options.format', o.format);
  const blockSize = checkBlockSize('options.blockSize', o.blockSize);
  const args: NativeQuantizedArgs = [
    DTYPE_CODE[dtype],
    FORMAT_CODE[format],
    blockSize,
    REDUCE_OP_CODE[op],
    residual,
    checkSeed('options.stochastic', o.stochastic),
    checkTimeout('options.timeoutMs', o.timeoutMs, defaultTimeoutMs),
  ];
  return { input: inp, output: out, args, wire: quantizedWireBytes(kind, size, inp.length, out.length, format, blockSize) };
}

/** The native kind codes of the device quantized collectives (communicator_device_quantized.cc). */
const DEVICE_KIND_CODE: Record<QuantizedKind, number> = { allToAll: 0, reduceScatter: 1, allGather: 2, allReduce: 3 };

/**
 * @internal Validates a quantized collective's arguments on DeviceBuffers (onDevice() has said
 * they are) for a communicator of `size` ranks: the same rules as on host arrays, with the
 * dtype taken from the input and a float32 DeviceBuffer as the residual. Returns the native
 * call's arguments and the Work's result.
 */
export function deviceQuantizedCallArgs(
  kind: QuantizedKind,
  size: number,
  input: DeviceBuffer,
  output: unknown,
  options: QuantizedAllReduceOptions<DeviceBuffer> | undefined,
  defaultTimeoutMs: number,
): { result: DeviceBuffer; args: NativeDeviceQuantizedArgs; wire: { sent: number; received: number } } {
  const operation = `${kind}Quantized`;
  const o = checkOptions<QuantizedAllReduceOptions<DeviceBuffer>>('options', options, quantizedOptionKeys(kind));
  const inName = kind === 'allReduce' ? 'buffer' : 'input';
  const outName = kind === 'allReduce' ? 'options.output' : 'output';
  const inp = checkDeviceBuffer(operation, inName, input, FLOATS);
  checkSameDType('options.dtype', o.dtype, inp);
  const out = kind === 'allReduce' && output === undefined ? undefined : checkDeviceBuffer(operation, outName, output, [inp.dtype], { name: inName, buffer: inp });
  const op = quantizedOp(o.op);
  const residualLength = checkQuantizedLengths(kind, size, inp.length, out === undefined ? inp.length : out.length);
  const residual =
    o.errorFeedback === undefined
      ? null
      : checkDeviceBuffer(operation, 'options.errorFeedback', o.errorFeedback, ['float32'], { name: inName, buffer: inp, length: residualLength });
  const format = checkFormat('options.format', o.format);
  const blockSize = checkBlockSize('options.blockSize', o.blockSize);
  const args: NativeDeviceQuantizedArgs = [
    DEVICE_KIND_CODE[kind],
    DeviceBuffer.native(inp),
    out === undefined ? null : DeviceBuffer.native(out),
    FORMAT_CODE[format],
    blockSize,
    REDUCE_OP_CODE[op],
    residual === null ? null : DeviceBuffer.native(residual),
    checkSeed('options.stochastic', o.stochastic),
    checkTimeout('options.timeoutMs', o.timeoutMs, defaultTimeoutMs),
  ];
  const wire = quantizedWireBytes(kind, size, inp.length, out === undefined ? inp.length : out.length, format, blockSize);
  return { result: out ?? inp, args, wire };
}

/**
 * Bytes a quantized collective sends (and receives) on the wire: one encoded slot per peer
 * (quantizedSize of the chunk each peer gets), and two rounds of them for all-reduce
 * (reduce-scatter, then all-gather of the shards of ceil(length / size) elements).
 */
function quantizedWireBytes(kind: QuantizedKind, size: number, inLength: number, outLength: number, format: QuantFormat, blockSize: number): { sent: number; received: number } {
  const slot = (count: number): number => (count === 0 ? 0 : quant().quantizedSize(count, FORMAT_CODE[format], blockSize));
  const peers = size - 1;
  let bytes: number;
  switch (kind) {
    case 'allToAll':
      bytes = peers * slot(inLength / size);
      break;
    case 'reduceScatter':
      bytes = peers * slot(outLength);
      break;
    case 'allGather':
      bytes = peers * slot(inLength);
      break;
    case 'allReduce':
      bytes = 2 * peers * slot(Math.ceil(inLength / size));
      break;
  }
  return { sent: bytes, received: bytes };
}

/**
 * The error-feedback residual's length for a quantized collective: the
 * input's length, plus ceil(length / size) for all-reduce (the residual of
 * the shard this rank reduces and quantizes a second time).
 */
export function errorFeedbackLength(kind: QuantizedKind, inputLength: number, worldSize: number): number {
  const n = checkInt('inputLength', inputLength, 0, Number.MAX_SAFE_INTEGER);
  const s = checkInt('worldSize', worldSize, 1, 1 << 20);
  return residualLength(kind, n, s);
}
