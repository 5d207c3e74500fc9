export { init, versions, DEFAULT_TIMEOUT_MS, type InitOptions, type Engine } from './core/init';
export {
  Communicator,
  type AllReduceOptions,
  type BroadcastOptions,
  type CollectiveBuffer,
  type DataOptions,
  type P2POptions,
  type ReduceOptions,
  type RootedReduceOptions,
  type RootedOptions,
  type MonitoredBarrierOptions,
} from './core/communicator';
export { Store, type StoreConnectOptions } from './core/store';
export type { JsonValue } from './core/objects';
export { Work } from './core/work';
export { backends, type Backends, type BackendStatus, type LibraryStatus, type CudaStatus, type MpiStatus } from './core/backends';
export { DeviceBuffer, type DeviceBufferOptions, type DeviceCopyOptions } from './core/device';
export { CollectiveError, ErrorCode } from './core/errors';
export { DTYPES, REDUCE_OPS, DTYPE_BYTES, type DType, type ReduceOp, type HostArray } from './core/dtypes';
export { rankFromEnvironment, type RankInfo } from './core/env';
export type { CallOptions } from './core/options';
export type { GlooTuning, ResolvedGlooTuning } from './core/tuning';
export {
  quantize,
  dequantize,
  quantizedSize,
  errorFeedbackLength,
  DEFAULT_BLOCK_SIZE,
  QUANT_FORMATS,
  type QuantFormat,
  type Quantized,
  type QuantizedLike,
  type QuantOptions,
  type QuantizeOptions,
  type DequantizeOptions,
  type DeviceQuantized,
  type DeviceQuantizeOptions,
  type DeviceDequantizeOptions,
  type StochasticRounding,
  type QuantizedCallOptions,
  type QuantizedReduceOptions,
  type QuantizedAllReduceOptions,
  type CollectiveMemory,
} from './core/quantized';
