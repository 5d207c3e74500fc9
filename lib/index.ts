export { init, versions, DEFAULT_TIMEOUT_MS, type InitOptions } from './init';
export {
  Communicator,
  type AllReduceOptions,
  type BroadcastOptions,
  type CollectiveBuffer,
  type DataOptions,
  type P2POptions,
  type ReduceOptions,
  type RootedReduceOptions,
} from './communicator';
export { Work } from './work';
export { backends, type Backends, type BackendStatus, type LibraryStatus, type CudaStatus } from './backends';
export { DeviceBuffer, type DeviceBufferOptions, type DeviceCopyOptions } from './device';
export { CollectiveError, ErrorCode } from './errors';
export { DTYPES, REDUCE_OPS, DTYPE_BYTES, type DType, type ReduceOp, type HostArray } from './dtypes';
export { rankFromEnvironment, type RankInfo } from './env';
export type { CallOptions } from './options';
export type { GlooTuning } from './tuning';
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
  type DeviceQuantizedCallOptions,
  type DeviceQuantizedReduceOptions,
  type DeviceQuantizedAllReduceOptions,
} from './quantized';
export {
  adamwStep,
  nesterovStep,
  axpy,
  scale,
  cast,
  type AdamWOptions,
  type NesterovOptions,
  type CastOptions,
  type Float32Buffer,
} from './ops';
