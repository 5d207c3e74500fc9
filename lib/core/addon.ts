/**
 * The addon's typed interface: what native/addon.cc exports, as the TypeScript side calls it.
 * loader.ts finds and loads the file; everything else talks to the addon through these types.
 */

/** The addon's exports (see native/addon.cc). */
export interface NativeAddon {
  connect(options: NativeConnectOptions): Promise<NativeCommunicator>;
  versions: { gloo: string; napi: number };
  quant: NativeQuant;
  ops: NativeOps;
  gpu: NativeGpu;
  mpi: NativeMpi;
}

/** Open MPI, opened at run time (native/mpi/). */
export interface NativeMpi {
  status(): NativeLibraryStatus & { libraryVersion?: string; initialized: boolean; threadLevel?: string };
}

/** The host elementwise operations (native/ops/ops_exports.cc). */
export interface NativeOps {
  adamwStep(param: Float32Array, grad: Float32Array, expAvg: Float32Array, expAvgSq: Float32Array, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  nesterovStep(param: Float32Array, delta: Float32Array, momentumBuffer: Float32Array, lr: number, momentum: number): void;
  axpy(a: number, x: Float32Array, y: Float32Array): void;
  scale(x: Float32Array, a: number): void;
  cast(input: Arr, inputDtype: number, output: Arr, outputDtype: number): void;
}

/** Run-time loaded CUDA and NCCL (native/gpu/). */
export interface NativeGpu {
  backends(): { cuda: NativeLibraryStatus & { devices?: number; driverVersion?: string; kernels: NativeLibraryStatus }; nccl: NativeLibraryStatus };
  ops: NativeDeviceOps;
  DeviceBuffer: {
    new (dtype: number, length: number, device: number): NativeDeviceBuffer;
    new (parent: NativeDeviceBuffer, begin: number, end: number): NativeDeviceBuffer;
  };
}

export interface NativeLibraryStatus {
  available: boolean;
  library?: string;
  version?: string;
  reason?: string;
  tried: string[];
}

export interface NativeDeviceBuffer {
  readonly dtype: number;
  readonly length: number;
  readonly byteLength: number;
  readonly byteOffset: number;
  readonly device: number;
  readonly freed: boolean;
  readonly isView: boolean;
  copyFrom(source: ArrayBufferView, offset: number): unknown;
  copyTo<T extends ArrayBufferView>(target: T, offset: number): T;
  fill(value: number | bigint): unknown;
  free(): void;
}

/** The elementwise operations and codecs on DeviceBuffers (native/gpu/device_ops.cc); dtypes are the buffers'. */
export interface NativeDeviceOps {
  adamwStep(param: NativeDeviceBuffer, grad: NativeDeviceBuffer, expAvg: NativeDeviceBuffer, expAvgSq: NativeDeviceBuffer, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  nesterovStep(param: NativeDeviceBuffer, delta: NativeDeviceBuffer, momentumBuffer: NativeDeviceBuffer, lr: number, momentum: number): void;
  axpy(a: number, x: NativeDeviceBuffer, y: NativeDeviceBuffer): void;
  scale(x: NativeDeviceBuffer, a: number): void;
  cast(input: NativeDeviceBuffer, output: NativeDeviceBuffer): void;
  quantize(input: NativeDeviceBuffer, format: number, blockSize: number, output: NativeDeviceBuffer, residual: NativeDeviceBuffer | null, seed: bigint | null): void;
  dequantize(bytes: NativeDeviceBuffer, count: number, format: number, blockSize: number, output: NativeDeviceBuffer): void;
}

/** The codecs (native/quant/quant_exports.cc). */
export interface NativeQuant {
  quantize(input: Arr, dtype: number, format: number, blockSize: number, output: Uint8Array, residual: Float32Array | null, seed: bigint | null): void;
  dequantize(bytes: Uint8Array, count: number, format: number, blockSize: number, output: Arr, dtype: number): void;
  quantizedSize(count: number, format: number, blockSize: number): number;
  readonly defaultBlockSize: number;
  readonly instructionSet: string;
}

/** Arguments of every quantized collective, after `input` and `output`. */
export type NativeDeviceQuantizedArgs = [
  kind: number,
  input: NativeDeviceBuffer,
  output: NativeDeviceBuffer | null,
  format: number,
  blockSize: number,
  op: number,
  residual: NativeDeviceBuffer | null,
  seed: bigint | null,
  timeoutMs: number,
];
export type NativeQuantizedArgs = [dtype: number, format: number, blockSize: number, op: number, residual: Float32Array | null, seed: bigint | null, timeoutMs: number];

export interface NativeConnectOptions {
  rank: number;
  size: number;
  timeoutMs: number;
  prefix: string;
  hostname?: string;
  iface?: string;
  storeHost?: string;
  storePort?: number;
  storePath?: string;
  token?: string;
  glooMode?: string;
  allReduceAlgorithm?: string;
  busyPoll?: boolean;
  /** The inline path's threshold in bytes (0 or absent: off); see GlooTuning.inlineBytes. */
  inlineBytes?: number;
  /** Inline only while no other communicator of more than one rank is open in this thread. */
  inlineAlone?: boolean;
  /** 'detail' compares a fingerprint of every collective across ranks first. */
  debug?: string;
  /** 'mpi' runs host collectives over Open MPI; otherwise Gloo. */
  engine?: string;
  /** The caller keeps the process alive while the rendezvous is pending (init()'s timer). */
  callerHoldsProcess?: boolean;
}

type Arr = ArrayBufferView;
export interface NativeCommunicator {
  readonly rank: number;
  readonly size: number;
  readonly pending: number;
  readonly closed: boolean;
  /** 'gloo' or 'mpi'. */
  readonly engine: string;
  algorithm(op: string, bytes: number, device: boolean): string;
  /** The calls that ran inline on the calling thread, by method, since the communicator was made. */
  inlineCalls(): Record<string, number>;
  allReduce(input: Arr, output: Arr, dtype: number, op: number, timeoutMs: number): Promise<void>;
  reduceScatter(input: Arr, output: Arr, dtype: number, op: number, timeoutMs: number): Promise<void>;
  allGather(input: Arr, output: Arr, dtype: number, timeoutMs: number): Promise<void>;
  broadcast(buffer: Arr, dtype: number, root: number, timeoutMs: number): Promise<void>;
  reduce(input: Arr, output: Arr | null, dtype: number, op: number, root: number, timeoutMs: number): Promise<void>;
  barrier(timeoutMs: number): Promise<void>;
  /** On rank 0 the ranks that did not arrive (empty when all did); empty elsewhere. */
  monitoredBarrier(timeoutMs: number, waitAll: boolean, tag: number): Promise<number[]>;
  allToAll(input: Arr, output: Arr, dtype: number, timeoutMs: number): Promise<void>;
  allToAllV(input: Arr, inputSplits: number[], output: Arr, outputSplits: number[], dtype: number, timeoutMs: number): Promise<void>;
  deviceCollective(
    kind: 'allReduce' | 'reduceScatter' | 'allGather' | 'broadcast' | 'reduce' | 'allToAll',
    input: NativeDeviceBuffer,
    output: NativeDeviceBuffer | null,
    op: number,
    root: number,
    timeoutMs: number,
  ): Promise<void>;
  deviceAllToAllV(
    input: NativeDeviceBuffer,
    inputSplits: number[],
    output: NativeDeviceBuffer,
    outputSplits: number[],
    timeoutMs: number,
  ): Promise<void>;
  deviceSendRecv(isSend: boolean, buffer: NativeDeviceBuffer, peer: number, timeoutMs: number): Promise<void>;
  deviceGroup(begin: boolean, timeoutMs: number): Promise<void>;
  deviceQuantized(...args: NativeDeviceQuantizedArgs): Promise<void>;
  allToAllQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  reduceScatterQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  allGatherQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  allReduceQuantized(input: Arr, output: Arr, ...args: NativeQuantizedArgs): Promise<void>;
  send(buffer: Arr, dtype: number, peer: number, tag: number, timeoutMs: number): Promise<void>;
  recv(buffer: Arr, dtype: number, peer: number, tag: number, timeoutMs: number): Promise<void>;
  /** `members`: the parent ranks of the new communicator, in their new order (MPI needs them). */
  split(rank: number, size: number, key: string, timeoutMs: number, members?: number[]): Promise<NativeCommunicator>;
  close(): void;
  abort(reason?: string): void;
}
