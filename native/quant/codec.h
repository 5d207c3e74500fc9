// Blockwise codecs on the host: whole chunks of float32 / float16 / bfloat16
// to and from the wire layout of FORMAT.md, in tight loops over the
// per-block math of block_math.h. Single-threaded; the collectives call them
// on the communicator's queue thread, quantize()/dequantize() on the caller's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../dtype.h"
#include "block_math.h"

namespace collectives {
namespace quant {

// The layout helpers are QUANT_HD: the CUDA kernels use them too.
// Block sizes: a multiple of 8 (whole bytes of int4 per block) in this range.
constexpr size_t kMinBlockSize = 8;
constexpr size_t kMaxBlockSize = size_t(1) << 20;
// Chosen from the sweep in bench/codec-throughput.js (bench/RESULTS.md).
constexpr size_t kDefaultBlockSize = 256;

QUANT_HD inline bool validBlockSize(size_t b) {
  return b >= kMinBlockSize && b <= kMaxBlockSize && b % 8 == 0;
}
inline bool quantizable(DType t) { return t == DType::kFloat32 || isHalf(t); }

QUANT_HD inline size_t blockCount(size_t count, size_t blockSize) {
  return (count + blockSize - 1) / blockSize;
}
QUANT_HD inline size_t payloadBytes(size_t count, Format f) {
  return formatBits(f) == 4 ? (count + 1) / 2 : count;
}
// One chunk: scales (float32 each), then the payload, padded to 4 bytes.
QUANT_HD inline size_t chunkBytes(size_t count, Format f, size_t blockSize) {
  size_t n = 4 * blockCount(count, blockSize) + payloadBytes(count, f);
  return (n + 3) & ~size_t(3);
}

// Rounding: nearest-even unless `stochastic`, then floor(y + u) with u from
// randomBits(key, indexBase + i) for element i.
struct Rounding {
  bool stochastic = false;
  uint64_t key = 0;
};

// Derives the key of one stochastic stream (the seed, the rank, the stage of
// a collective), so different ranks and stages draw independent numbers.
uint64_t streamKey(uint64_t seed, uint64_t rank, uint64_t stage);

// Quantizes `count` elements of `in` (float32, float16 or bfloat16) into one
// chunk at `out` (chunkBytes(count, f, blockSize) bytes; any alignment).
// `residual` (float32[count], may be null) is error feedback: it is added to
// the input first and then replaced by what this quantization lost.
void quantizeChunk(const void* in, DType dtype, size_t count, Format f, size_t blockSize,
                   const Rounding& rounding, uint64_t indexBase, float* residual,
                   uint8_t* out);

// Dequantizes one chunk of `count` elements into `out` (float32, float16 or
// bfloat16; half types are rounded once from float32).
void dequantizeChunk(const uint8_t* in, size_t count, Format f, size_t blockSize,
                     DType dtype, void* out);

// acc[i] += the dequantized element i of the chunk (float32).
void accumulateChunk(const uint8_t* in, size_t count, Format f, size_t blockSize,
                     float* acc);

// "avx2" or "baseline": which build of the loops this machine runs.
const char* codecInstructionSet();

}  // namespace quant
}  // namespace collectives
