#include "quantized_ops.h"

#include <algorithm>

namespace collectives {
namespace quant {
namespace {

// Stages of a call, so that each draws its own stochastic stream.
constexpr uint64_t kStageExchange = 0;
constexpr uint64_t kStageReduced = 1;

Rounding roundingFor(const QuantSpec& spec, int rank, uint64_t stage) {
  Rounding r;
  r.stochastic = spec.stochastic;
  if (spec.stochastic) r.key = streamKey(spec.seed, uint64_t(rank), stage);
  return r;
}

const char* at(const void* base, size_t elements, DType dtype) {
  return static_cast<const char*>(base) + elements * dtypeSize(dtype);
}
char* at(void* base, size_t elements, DType dtype) {
  return static_cast<char*>(base) + elements * dtypeSize(dtype);
}

float* accumulator(QuantEngine& e, size_t count) {
  return reinterpret_cast<float*>(e.scratch(QuantEngine::kAcc, std::max<size_t>(count, 1) * 4));
}

// Quantizes `count` elements into a slot of `slotBytes` (>= their chunk),
// zeroing the rest of the slot so that every byte sent is defined.
void quantizeIntoSlot(QuantEngine& e, const void* in, DType dtype, size_t count,
                      const QuantSpec& spec, const Rounding& rounding, uint64_t indexBase,
                      float* residual, uint8_t* slot, size_t slotBytes) {
  size_t used = 0;
  if (count > 0) {
    e.quantize(in, dtype, count, spec, rounding, indexBase, residual, slot);
    used = chunkBytes(count, spec.format, spec.blockSize);
  }
  if (slotBytes > used) e.zero(slot + used, slotBytes - used);
}

// Sums the `size` chunks of `count` elements in `recv` (in rank order, in
// float32) into `acc`; divides by size for avg.
void reduceChunks(QuantEngine& e, const uint8_t* recv, size_t slotBytes, size_t count,
                  const QuantSpec& spec, RedOp op, float* acc) {
  e.dequantize(recv, count, spec, DType::kFloat32, acc);
  for (int r = 1; r < e.size(); r++) e.accumulate(recv + size_t(r) * slotBytes, count, spec, acc);
  if (op == RedOp::kAvg) e.divide(acc, count, e.size());
}

// Quantizes chunk r of `in` for rank r (each chunk its own blocks) and
// exchanges the chunks; returns the received ones, one slot per rank.
const uint8_t* exchangeQuantized(QuantEngine& e, const void* in, size_t countPerRank,
                                 DType dtype, const QuantSpec& spec, float* residual) {
  const int size = e.size();
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  uint8_t* send = e.scratch(QuantEngine::kSend, slot * size_t(size));
  uint8_t* recv = e.scratch(QuantEngine::kRecv, slot * size_t(size));
  const Rounding rounding = roundingFor(spec, e.rank(), kStageExchange);
  for (int r = 0; r < size; r++) {
    const size_t first = size_t(r) * countPerRank;
    e.quantize(at(in, first, dtype), dtype, countPerRank, spec, rounding, first,
               residual ? residual + first : nullptr, send + size_t(r) * slot);
  }
  e.allToAll(send, recv, slot);
  return recv;
}

}  // namespace

void allToAllQuantized(QuantEngine& e, const void* in, void* out, size_t countPerRank,
                       DType dtype, const QuantSpec& spec, float* residual) {
  if (countPerRank == 0) return;
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  const uint8_t* recv = exchangeQuantized(e, in, countPerRank, dtype, spec, residual);
  for (int r = 0; r < e.size(); r++) {
    e.dequantize(recv + size_t(r) * slot, countPerRank, spec, dtype,
                 at(out, size_t(r) * countPerRank, dtype));
  }
}

void reduceScatterQuantized(QuantEngine& e, const void* in, void* out, size_t countPerRank,
                            DType dtype, RedOp op, const QuantSpec& spec, float* residual) {
  if (countPerRank == 0) return;
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  const uint8_t* recv = exchangeQuantized(e, in, countPerRank, dtype, spec, residual);
  float* acc = accumulator(e, countPerRank);
  reduceChunks(e, recv, slot, countPerRank, spec, op, acc);
  e.store(acc, countPerRank, dtype, out);
}

void allGatherQuantized(QuantEngine& e, const void* in, void* out, size_t countPerRank,
                        DType dtype, const QuantSpec& spec, float* residual) {
  if (countPerRank == 0) return;
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  uint8_t* send = e.scratch(QuantEngine::kSend, slot);
  uint8_t* recv = e.scratch(QuantEngine::kRecv, slot * size_t(e.size()));
  e.quantize(in, dtype, countPerRank, spec, roundingFor(spec, e.rank(), kStageExchange), 0,
             residual, send);
  e.allGather(send, recv, slot);
  // This rank's own chunk is dequantized from the bytes it sent too, so every
  // rank holds the same output.
  for (int r = 0; r < e.size(); r++) {
    e.dequantize(recv + size_t(r) * slot, countPerRank, spec, dtype,
                 at(out, size_t(r) * countPerRank, dtype));
  }
}

void allReduceQuantized(QuantEngine& e, const void* in, void* out, size_t count, DType dtype,
                        RedOp op, const QuantSpec& spec, float* residual) {
  if (count == 0) return;
  const int size = e.size();
  const int rank = e.rank();
  const size_t shard = shardCount(count, size);
  auto countOf = [&](int r) {
    const size_t first = std::min(count, size_t(r) * shard);
    return std::min(shard, count - first);
  };
  const size_t slot = chunkBytes(shard, spec.format, spec.blockSize);

  // Stage 1: quantized reduce-scatter of the shards (one quantization).
  uint8_t* send = e.scratch(QuantEngine::kSend, slot * size_t(size));
  uint8_t* recv = e.scratch(QuantEngine::kRecv, slot * size_t(size));
  const Rounding first = roundingFor(spec, rank, kStageExchange);
  for (int r = 0; r < size; r++) {
    const size_t start = std::min(count, size_t(r) * shard);
    quantizeIntoSlot(e, at(in, start, dtype), dtype, countOf(r), spec, first, start,
                     residual ? residual + start : nullptr, send + size_t(r) * slot, slot);
  }
  e.allToAll(send, recv, slot);
  const size_t mine = countOf(rank);
  float* acc = accumulator(e, mine);
  if (mine > 0) reduceChunks(e, recv, slot, mine, spec, op, acc);

  // Stage 2: quantized all-gather of the reduced shards (the second one).
  // Every rank, this one included, dequantizes the same bytes: the outputs
  // agree bit for bit.
  quantizeIntoSlot(e, acc, DType::kFloat32, mine, spec, roundingFor(spec, rank, kStageReduced),
                   size_t(rank) * shard, residual ? residual + count : nullptr, send, slot);
  e.allGather(send, recv, slot);
  for (int r = 0; r < size; r++) {
    const size_t n = countOf(r);
    if (n == 0) continue;
    e.dequantize(recv + size_t(r) * slot, n, spec, dtype, at(out, size_t(r) * shard, dtype));
  }
}

const char* quantKindName(QuantKind k) {
  switch (k) {
    case QuantKind::kAllToAll: return "allToAllQuantized";
    case QuantKind::kReduceScatter: return "reduceScatterQuantized";
    case QuantKind::kAllGather: return "allGatherQuantized";
    case QuantKind::kAllReduce: return "allReduceQuantized";
  }
  return "quantized";
}

void runQuantized(QuantKind k, QuantEngine& e, const void* in, void* out, size_t count, DType dtype,
                  RedOp op, const QuantSpec& spec, float* residual) {
  switch (k) {
    case QuantKind::kAllToAll:
      allToAllQuantized(e, in, out, count, dtype, spec, residual);
      break;
    case QuantKind::kReduceScatter:
      reduceScatterQuantized(e, in, out, count, dtype, op, spec, residual);
      break;
    case QuantKind::kAllGather:
      allGatherQuantized(e, in, out, count, dtype, spec, residual);
      break;
    case QuantKind::kAllReduce:
      allReduceQuantized(e, in, out, count, dtype, op, spec, residual);
      break;
  }
}

}  // namespace quant
}  // namespace collectives
