import { loadAddon } from './loader';

/** Whether one engine can be used here, and why not. */
export interface BackendStatus {
  available: boolean;
  /** The engine's version, when it was found. */
  version?: string;
  /** Why it is not available: what was tried and what failed. */
  reason?: string;
}

/** A library opened at run time. */
export interface LibraryStatus extends BackendStatus {
  /** The file that was opened. */
  library?: string;
  /** Every path tried before it, each with why it failed. */
  tried: string[];
}

export interface CudaStatus extends LibraryStatus {
  /** The number of CUDA devices (present once the runtime loaded). */
  devices?: number;
  /** The CUDA version the driver supports, e.g. "12.4". */
  driverVersion?: string;
  /**
   * libcollectives_cuda, the kernels of the device operations (ops on DeviceBuffers, quantize /
   * dequantize on DeviceBuffers): searched in COLLECTIVES_CUDA_KERNELS when set, else beside the
   * addon, else the usual library folders. `version` is its C API version.
   */
  kernels: LibraryStatus;
}

export interface Backends {
  /** Host memory over Gloo: always built in. */
  gloo: BackendStatus;
  /** The CUDA runtime, needed for DeviceBuffer: available when it loaded and sees a device. */
  cuda: CudaStatus;
  /** NCCL (libnccl.so.2), for collectives on device memory: available when it loaded at 2.12 or later. */
  nccl: LibraryStatus;
}

/**
 * What this machine can use. The CUDA runtime and NCCL are searched for the
 * first time this (or DeviceBuffer) is called, and the answer is kept for the
 * life of the process: set COLLECTIVES_CUDA_LIBRARY / COLLECTIVES_NCCL_LIBRARY /
 * COLLECTIVES_CUDA_KERNELS before that.
 */
export function backends(): Backends {
  const addon = loadAddon();
  const gpu = addon.gpu.backends();
  return { gloo: { available: true, version: addon.versions.gloo }, cuda: gpu.cuda, nccl: gpu.nccl };
}
