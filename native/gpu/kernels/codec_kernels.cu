// The blockwise codecs on the device: quantize, dequantize and
// dequantize-and-accumulate over the per-block math of quant/block_math.h,
// the same functions the host loops of quant/codec.cc run, so the bytes and
// values are the host's bit for bit (built with -fmad=false; division and
// sqrt are IEEE-rounded by nvcc's defaults).
#include <cuda_runtime.h>

#include "../../ops/elementwise_math.h"
#include "../../quant/block_math.h"
#include "../../quant/codec.h"
#include "kernels.h"
#include "launch.cuh"

namespace collectives {
namespace gpu {
namespace {

using quant::Format;

__device__ inline float loadInput(const void* in, int dtype, size_t i) {
  return ops::loadAsFloat(in, i, dtype);
}

// One thread block per quantization block: the block's absmax (a shared
// maximum of absBits), its scale, then each thread encodes its elements
// (int4: its bytes, two elements each) and writes their residuals.
__global__ void quantizeKernel(const void* in, int dtype, size_t count, Format f,
                               size_t blockSize, size_t blocks, bool stochastic, uint64_t key,
                               uint64_t indexBase, float* residual, uint8_t* out) {
  __shared__ uint32_t blockMax;
  const size_t b = blockIdx.x;
  const size_t first = b * blockSize;
  const size_t n = count - first < blockSize ? count - first : blockSize;
  auto load = [&](size_t i) {
    float x = loadInput(in, dtype, first + i);
    if (residual) x += residual[first + i];  // only then: x + 0 would turn -0 into +0
    return x;
  };

  if (threadIdx.x == 0) blockMax = 0;
  __syncthreads();
  uint32_t m = 0;
  for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
    const uint32_t a = quant::absBits(load(i));
    m = a > m ? a : m;
  }
  m = __reduce_max_sync(0xffffffffu, m);
  if ((threadIdx.x & 31) == 0) atomicMax(&blockMax, m);
  __syncthreads();

  const float scale = quant::blockScale(blockMax, f);
  const bool finite = quant::finiteScale(scale);
  if (threadIdx.x == 0) reinterpret_cast<float*>(out)[b] = scale;
  uint8_t* p = out + 4 * blocks + quant::payloadBytes(first, f);

  auto code = [&](size_t i) -> uint32_t {
    const float x = load(i);
    uint32_t c;
    if (scale == 0.0f) {
      c = 0;
    } else if (finite) {
      const uint32_t r = stochastic ? quant::randomBits(key, indexBase + first + i) : 0u;
      c = quant::encodeElement(f, x, scale, stochastic, r);
    } else {
      c = quant::encodeNonFinite(f, x);
    }
    if (residual) {
      // A non-finite block leaves no residual (a NaN would poison later calls).
      residual[first + i] = finite ? x - quant::dequantizeElement(f, c, scale) : 0.0f;
    }
    return c;
  };

  if (f == Format::kInt4) {
    const size_t bytes = (n + 1) / 2;
    for (size_t j = threadIdx.x; j < bytes; j += blockDim.x) {
      const uint32_t lo = code(2 * j);
      const uint32_t hi = 2 * j + 1 < n ? code(2 * j + 1) : 0u;  // an odd tail's high nibble is 0
      p[j] = uint8_t((lo & 0xFu) | ((hi & 0xFu) << 4));
    }
  } else {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) p[i] = uint8_t(code(i));
  }

  if (b == 0) {
    // Zero the padding after the payload (at most 3 bytes).
    const size_t used = 4 * blocks + quant::payloadBytes(count, f);
    const size_t total = quant::chunkBytes(count, f, blockSize);
    if (used + threadIdx.x < total) out[used + threadIdx.x] = 0;
  }
}

__device__ inline float dequantized(const uint8_t* in, size_t blocks, Format f,
                                    size_t blockSize, size_t i) {
  const float scale = reinterpret_cast<const float*>(in)[i / blockSize];
  const uint8_t* payload = in + 4 * blocks;
  uint32_t c;
  if (f == Format::kInt4) {
    const uint32_t byte = payload[i / 2];
    c = (i & 1) ? byte >> 4 : byte & 0xFu;
  } else {
    c = payload[i];
  }
  return quant::dequantizeElement(f, c, scale);
}

__global__ void dequantizeKernel(const uint8_t* in, size_t count, Format f, size_t blockSize,
                                 size_t blocks, int dtype, void* out) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count;
       i += size_t(gridDim.x) * blockDim.x) {
    ops::storeFromFloat(out, i, dtype, dequantized(in, blocks, f, blockSize, i));
  }
}

__global__ void accumulateKernel(const uint8_t* in, size_t count, Format f, size_t blockSize,
                                 size_t blocks, float* acc) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count;
       i += size_t(gridDim.x) * blockDim.x) {
    acc[i] += dequantized(in, blocks, f, blockSize, i);
  }
}

}  // namespace
}  // namespace gpu
}  // namespace collectives

using namespace collectives::gpu;
using collectives::quant::Format;

extern "C" int collectives_cuda_quantize(const void* in, int dtype, size_t count, int format,
                                         size_t blockSize, int stochastic, uint64_t key,
                                         uint64_t indexBase, float* residual, void* out,
                                         void* stream) {
  if (!validCodec(format, blockSize) || !validFloatType(dtype) || !aligned4(out)) {
    return COLLECTIVES_CUDA_EINVAL;
  }
  if (count == 0) return 0;
  if (!in || !out) return COLLECTIVES_CUDA_EINVAL;
  const size_t blocks = collectives::quant::blockCount(count, blockSize);
  if (blocks > 0x7fffffffu) return COLLECTIVES_CUDA_EINVAL;
  const unsigned threads = blockSize >= 256 ? 256u : unsigned((blockSize + 31) / 32 * 32);
  quantizeKernel<<<unsigned(blocks), threads, 0, asStream(stream)>>>(
      in, dtype, count, Format(format), blockSize, blocks, stochastic != 0, key, indexBase,
      residual, static_cast<uint8_t*>(out));
  return launchStatus();
}

extern "C" int collectives_cuda_dequantize(const void* in, size_t count, int format,
                                           size_t blockSize, int dtype, void* out,
                                           void* stream) {
  if (!validCodec(format, blockSize) || !validFloatType(dtype) || !aligned4(in)) {
    return COLLECTIVES_CUDA_EINVAL;
  }
  if (count == 0) return 0;
  if (!out) return COLLECTIVES_CUDA_EINVAL;
  dequantizeKernel<<<gridFor(count), kThreads, 0, asStream(stream)>>>(
      static_cast<const uint8_t*>(in), count, Format(format), blockSize,
      collectives::quant::blockCount(count, blockSize), dtype, out);
  return launchStatus();
}

extern "C" int collectives_cuda_dequantize_accumulate(const void* in, size_t count, int format,
                                                      size_t blockSize, float* acc,
                                                      void* stream) {
  if (!validCodec(format, blockSize) || !aligned4(in)) return COLLECTIVES_CUDA_EINVAL;
  if (count == 0) return 0;
  if (!acc) return COLLECTIVES_CUDA_EINVAL;
  accumulateKernel<<<gridFor(count), kThreads, 0, asStream(stream)>>>(
      static_cast<const uint8_t*>(in), count, Format(format), blockSize,
      collectives::quant::blockCount(count, blockSize), acc);
  return launchStatus();
}
