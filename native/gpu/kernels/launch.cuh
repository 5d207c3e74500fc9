// Launch helpers shared by the kernel files of libcollectives_cuda.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "kernel_args.h"
#include "kernels.h"

namespace collectives {
namespace gpu {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements.
inline unsigned gridFor(size_t n) {
  const size_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < (size_t(1) << 20) ? b : (size_t(1) << 20));
}

inline cudaStream_t asStream(void* s) { return static_cast<cudaStream_t>(s); }

// The launch's status as this API returns it.
inline int launchStatus() { return int(cudaGetLastError()); }

}  // namespace gpu
}  // namespace collectives
