// COLLECTIVES_HD marks math that is compiled for the host and, under nvcc,
// for the device too (`__host__ __device__`): the CPU loops and the CUDA
// kernels then run the same source, and the CPU tests check the GPU's math.
#pragma once

#if defined(__CUDACC__)
#define COLLECTIVES_HD __host__ __device__
#else
#define COLLECTIVES_HD
#endif
