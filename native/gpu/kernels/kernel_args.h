// The argument checks libcollectives_cuda makes before it launches anything
// (COLLECTIVES_CUDA_EINVAL otherwise). Plain C++, so that the host-memory
// stand-in of the library (test/fixtures/fake-gpu) makes the very same ones.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../../quant/codec.h"

namespace collectives {
namespace gpu {

// dtype codes the kernels take: float32, float16, bfloat16 (native/dtype.h).
inline bool validFloatType(int t) { return t == 0 || t == 2 || t == 3; }

inline bool validCodec(int format, size_t blockSize) {
  return format >= 0 && format < quant::kFormatCount && quant::validBlockSize(blockSize);
}

// A chunk's scales are float32, read and written in place.
inline bool aligned4(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 3u) == 0; }

}  // namespace gpu
}  // namespace collectives
