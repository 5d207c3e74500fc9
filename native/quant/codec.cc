#include "codec.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace collectives {
namespace quant {
// Baseline build of the loops.
#define QUANT_KERNEL_NS portable
#include "codec_kernels.inc"
#undef QUANT_KERNEL_NS

#if defined(__x86_64__) && defined(__GNUC__)
#define QUANT_HAVE_AVX2 1
// The same loops for AVX2: twice the vector width of x86-64's baseline SSE2.
// No "fma" here: contracting a * b + c would change results between builds.
#pragma GCC push_options
#pragma GCC target("avx2")
#define QUANT_KERNEL_NS avx2
#include "codec_kernels.inc"
#undef QUANT_KERNEL_NS
#pragma GCC pop_options
#endif

namespace {

bool useAvx2() {
#if defined(QUANT_HAVE_AVX2)
  // COLLECTIVES_CODEC_ISA=baseline forces the baseline build (tests compare both).
  static const bool yes = __builtin_cpu_supports("avx2") &&
                          !(std::getenv("COLLECTIVES_CODEC_ISA") &&
                            std::strcmp(std::getenv("COLLECTIVES_CODEC_ISA"), "baseline") == 0);
  return yes;
#else
  return false;
#endif
}

}  // namespace

#if defined(QUANT_HAVE_AVX2)
#define QUANT_DISPATCH(fn, ...) (useAvx2() ? avx2::fn(__VA_ARGS__) : portable::fn(__VA_ARGS__))
#else
#define QUANT_DISPATCH(fn, ...) portable::fn(__VA_ARGS__)
#endif

uint64_t streamKey(uint64_t seed, uint64_t rank, uint64_t stage) {
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ ((rank + 1) * 0x9E3779B97F4A7C15ull)) ^
             ((stage + 1) * 0xD1B54A32D192ED03ull));
}

void quantizeChunk(const void* in, DType dtype, size_t count, Format f, size_t blockSize,
                   const Rounding& rounding, uint64_t indexBase, float* residual,
                   uint8_t* out) {
  if (count == 0) return;
  QUANT_DISPATCH(quantizeChunkImpl, in, dtype, count, f, blockSize, rounding, indexBase,
                 residual, out);
}

void dequantizeChunk(const uint8_t* in, size_t count, Format f, size_t blockSize,
                     DType dtype, void* out) {
  if (count == 0) return;
  QUANT_DISPATCH(dequantizeChunkImpl, in, count, f, blockSize, dtype, out);
}

void accumulateChunk(const uint8_t* in, size_t count, Format f, size_t blockSize,
                     float* acc) {
  if (count == 0) return;
  QUANT_DISPATCH(accumulateChunkImpl, in, count, f, blockSize, acc);
}

const char* codecInstructionSet() { return useAvx2() ? "avx2" : "baseline"; }

}  // namespace quant
}  // namespace collectives
