import { type Communicator, DeviceBuffer, type QuantFormat, errorFeedbackLength } from '../../index';
import { cast } from '../../ops';
import { allocate, release, type Float32Buffer } from '../buffers';

/**
 * How a bucket's gradients are averaged: torch DDP's communication hooks. 'none' is
 * allreduce_hook (a float32 average); 'fp16' and 'bf16' are fp16_compress_hook and
 * bf16_compress_hook (cast to the half type, average, cast back); 'int8', 'int4' and 'fp8'
 * average through the package's quantized all-reduce (blockwise, one float32 scale per block),
 * with error feedback by default: each bucket keeps what quantization lost and adds it to the
 * next step's gradients, so the running sum stays within one quantization step of exact.
 */
export type Compression = 'none' | 'fp16' | 'bf16' | 'int8' | 'int4' | 'fp8';
export const COMPRESSIONS: readonly Compression[] = ['none', 'fp16', 'bf16', 'int8', 'int4', 'fp8'];

export interface CommHook {
  /** Starts averaging `grad` (one bucket's view) over the ranks; resolves when `grad` holds the average. */
  average(comm: Communicator, bucket: number, grad: Float32Buffer): Promise<void>;
  /** Releases the device memory the hook keeps between steps (scratch, residuals). */
  free(): void;
}

export interface HookOptions {
  /** Elements per scale for the quantized formats (default the package's DEFAULT_BLOCK_SIZE). */
  blockSize?: number;
  /** Error feedback for the quantized formats (default true). */
  errorFeedback: boolean;
}

export function makeHook(compression: Compression, options: HookOptions): CommHook {
  switch (compression) {
    case 'none':
      return { average: (comm, _b, grad) => comm.allReduce(grad, { op: 'avg' }).wait().then(() => undefined), free: () => {} };
    case 'fp16':
      return new HalfHook('float16');
    case 'bf16':
      return new HalfHook('bfloat16');
    case 'int8':
    case 'int4':
      return new QuantizedHook(compression, options);
    case 'fp8':
      return new QuantizedHook('fp8e4m3', options);
  }
}

/** A half-precision copy per bucket, made once and reused every step. */
class HalfHook implements CommHook {
  readonly #dtype: 'float16' | 'bfloat16';
  readonly #scratch = new Map<number, Uint16Array | DeviceBuffer>();

  constructor(dtype: 'float16' | 'bfloat16') {
    this.#dtype = dtype;
  }

  async average(comm: Communicator, bucket: number, grad: Float32Buffer): Promise<void> {
    let half = this.#scratch.get(bucket);
    if (half === undefined) {
      half = grad instanceof DeviceBuffer ? new DeviceBuffer(this.#dtype, grad.length, { device: grad.device }) : new Uint16Array(grad.length);
      this.#scratch.set(bucket, half);
    }
    const dtype = this.#dtype;
    cast(grad, half, { outputDtype: dtype });
    // The average is reduced in float32 and rounded to the half type once (as the engines do).
    await comm.allReduce(half, { op: 'avg', dtype });
    cast(half, grad, { inputDtype: dtype });
  }

  free(): void {
    for (const b of this.#scratch.values()) if (b instanceof DeviceBuffer) b.free();
    this.#scratch.clear();
  }
}

/** The quantized all-reduce, with one error-feedback residual per bucket. */
class QuantizedHook implements CommHook {
  readonly #format: QuantFormat;
  readonly #blockSize: number | undefined;
  readonly #errorFeedback: boolean;
  readonly #residuals = new Map<number, Float32Buffer>();

  constructor(format: QuantFormat, options: HookOptions) {
    this.#format = format;
    this.#blockSize = options.blockSize;
    this.#errorFeedback = options.errorFeedback;
  }

  async average(comm: Communicator, bucket: number, grad: Float32Buffer): Promise<void> {
    let residual: Float32Buffer | undefined;
    if (this.#errorFeedback) {
      residual = this.#residuals.get(bucket);
      if (residual === undefined) {
        residual = allocate(errorFeedbackLength('allReduce', grad.length, comm.size), grad instanceof DeviceBuffer ? grad.device : undefined);
        this.#residuals.set(bucket, residual);
      }
    }
    const common = { format: this.#format, op: 'avg' as const, ...(this.#blockSize === undefined ? {} : { blockSize: this.#blockSize }) };
    if (grad instanceof DeviceBuffer) {
      await comm.allReduceQuantized(grad, { ...common, ...(residual === undefined ? {} : { errorFeedback: residual as DeviceBuffer }) });
    } else {
      await comm.allReduceQuantized(grad, { ...common, ...(residual === undefined ? {} : { errorFeedback: residual as Float32Array }) });
    }
  }

  free(): void {
    for (const r of this.#residuals.values()) release(r);
    this.#residuals.clear();
  }
}
