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

export interface MpiStatus extends LibraryStatus {
  /** MPI_Get_library_version's first line, e.g. "Open MPI v4.1.4". */
  libraryVersion?: string;
  /** Whether this process has started MPI (the first init({ engine: 'mpi' }) does). */
  initialized: boolean;
  /** The thread level MPI provided once started ('MPI_THREAD_SERIALIZED' or above). */
  threadLevel?: string;
  /** Whether these ranks were started by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is set). */
  underMpirun: boolean;
  /**
   * Whether init() picks MPI when neither options.engine nor COLLECTIVES_ENGINE says: under
   * mpirun with libmpi found. `defaultReason` says why or why not.
   */
  isDefault: boolean;
  defaultReason: string;
}

export interface Backends {
  /** Host memory over Gloo: always built in. */
  gloo: BackendStatus;
  /** The CUDA runtime, needed for DeviceBuffer: available when it loaded and sees a device. */
  cuda: CudaStatus;
  /** NCCL (libnccl.so.2), for collectives on device memory: available when it loaded at 2.12 or later. */
  nccl: LibraryStatus;
  /** Open MPI (libmpi.so.40), for host memory through MPI: available when it loaded (see docs/mpi.md). */
  mpi: MpiStatus;
}

/** Open MPI's status, and whether init() would choose it by default here. */
export function mpiStatus(env: NodeJS.ProcessEnv = process.env): MpiStatus {
  const s = loadAddon().mpi.status();
  const underMpirun = env.OMPI_COMM_WORLD_SIZE !== undefined && env.OMPI_COMM_WORLD_SIZE !== '';
  const isDefault = underMpirun && s.available;
  const defaultReason = !underMpirun
    ? 'not started by mpirun (OMPI_COMM_WORLD_SIZE is not set): Gloo is the default'
    : s.available
      ? 'started by mpirun and libmpi was found: MPI is the default'
      : `started by mpirun, but libmpi did not load (${s.reason ?? 'unknown'}): Gloo is the default`;
  return { ...s, underMpirun, isDefault, defaultReason };
}

/**
 * What this machine can use. The CUDA runtime, NCCL and Open MPI are searched for the
 * first time this (or DeviceBuffer, or init) is called, and the answer is kept for the
 * life of the process: set COLLECTIVES_CUDA_LIBRARY / COLLECTIVES_NCCL_LIBRARY /
 * COLLECTIVES_CUDA_KERNELS / COLLECTIVES_MPI_LIBRARY before that.
 */
export function backends(): Backends {
  const addon = loadAddon();
  const gpu = addon.gpu.backends();
  return { gloo: { available: true, version: addon.versions.gloo }, cuda: gpu.cuda, nccl: gpu.nccl, mpi: mpiStatus() };
}
