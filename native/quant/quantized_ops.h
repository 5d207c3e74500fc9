// Quantized collectives composed from a Backend's byte all-to-all and
// all-gather, so every engine that implements those gets them. Each runs as
// one operation on the calling thread (the communicator's queue thread):
// quantize, exchange the chunks, dequantize (and reduce in float32).
//
// Every chunk on the wire is self-contained (its own scales and payload, the
// layout of FORMAT.md) and all chunks of one call have the same size, so one
// exchange carries payload and scales together.
#pragma once

#include <cstdint>

#include "../backend.h"
#include "codec.h"

namespace collectives {
namespace quant {

struct QuantSpec {
  Format format = Format::kInt8;
  size_t blockSize = kDefaultBlockSize;
  bool stochastic = false;
  uint64_t seed = 0;
};

// Counts are in elements of `dtype` (float32, float16 or bfloat16). `residual`
// is the caller's error-feedback state (float32) or null; its length per
// operation is given beside each function.

// in, out: size * countPerRank. residual: size * countPerRank.
void allToAllQuantized(Backend& b, const void* in, void* out, size_t countPerRank, DType dtype,
                       const QuantSpec& spec, float* residual, Millis timeout);

// in: size * countPerRank; out: countPerRank. op: sum or avg.
// residual: size * countPerRank.
void reduceScatterQuantized(Backend& b, const void* in, void* out, size_t countPerRank,
                            DType dtype, RedOp op, const QuantSpec& spec, float* residual,
                            Millis timeout);

// in: countPerRank; out: size * countPerRank. residual: countPerRank.
void allGatherQuantized(Backend& b, const void* in, void* out, size_t countPerRank,
                        DType dtype, const QuantSpec& spec, float* residual, Millis timeout);

// in, out: count (any count; the last shards may be short or empty).
// residual: count + shardCount(count, size): the input's, then this rank's
// reduced shard's.
void allReduceQuantized(Backend& b, const void* in, void* out, size_t count, DType dtype,
                        RedOp op, const QuantSpec& spec, float* residual, Millis timeout);

// The elements of one all-reduce shard: ceil(count / size).
inline size_t shardCount(size_t count, int size) {
  return (count + size_t(size) - 1) / size_t(size);
}

}  // namespace quant
}  // namespace collectives
