// Quantized collectives written once over a QuantEngine (quant_engine.h), so
// host memory over Gloo and device memory over NCCL run the same steps:
// quantize, exchange the chunks, dequantize (and reduce in float32).
//
// Every chunk on the wire is self-contained (its own scales and payload, the
// layout of FORMAT.md) and all chunks of one call have the same size, so one
// exchange carries payload and scales together.
#pragma once

#include <cstdint>

#include "quant_engine.h"

namespace collectives {
namespace quant {

// Counts are in elements of `dtype` (float32, float16 or bfloat16). `residual`
// is the caller's error-feedback state (float32) or null; its length per
// operation is given beside each function. Pointers are in the engine's memory.

// in, out: size * countPerRank. residual: size * countPerRank.
void allToAllQuantized(QuantEngine& e, const void* in, void* out, size_t countPerRank,
                       DType dtype, const QuantSpec& spec, float* residual);

// in: size * countPerRank; out: countPerRank. op: sum or avg.
// residual: size * countPerRank.
void reduceScatterQuantized(QuantEngine& e, const void* in, void* out, size_t countPerRank,
                            DType dtype, RedOp op, const QuantSpec& spec, float* residual);

// in: countPerRank; out: size * countPerRank. residual: countPerRank.
void allGatherQuantized(QuantEngine& e, const void* in, void* out, size_t countPerRank,
                        DType dtype, const QuantSpec& spec, float* residual);

// in, out: count (any count; the last shards may be short or empty).
// residual: count + shardCount(count, size): the input's, then this rank's
// reduced shard's.
void allReduceQuantized(QuantEngine& e, const void* in, void* out, size_t count, DType dtype,
                        RedOp op, const QuantSpec& spec, float* residual);

// The four, by kind (the Communicator's host and device entry points).
enum class QuantKind : int { kAllToAll = 0, kReduceScatter, kAllGather, kAllReduce };
const char* quantKindName(QuantKind k);  // "allToAllQuantized", …
inline bool reduces(QuantKind k) { return k == QuantKind::kReduceScatter || k == QuantKind::kAllReduce; }
// count: elements per rank, or all of them for all-reduce; op only where the kind reduces.
void runQuantized(QuantKind k, QuantEngine& e, const void* in, void* out, size_t count, DType dtype,
                  RedOp op, const QuantSpec& spec, float* residual);

// The elements of one all-reduce shard: ceil(count / size).
inline size_t shardCount(size_t count, int size) {
  return (count + size_t(size) - 1) / size_t(size);
}

}  // namespace quant
}  // namespace collectives
