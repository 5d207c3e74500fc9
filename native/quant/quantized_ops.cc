#include "quantized_ops.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "../reduce_ops.h"

namespace collectives {
namespace quant {
namespace {

// Stages of a call, so that each draws its own stochastic stream.
constexpr uint64_t kStageExchange = 0;
constexpr uint64_t kStageReduced = 1;

// Scratch memory kept by the calling thread between calls. The queue thread
// belongs to one communicator, so this is a per-communicator cache: a fresh
// allocation of tens of MiB costs a page fault per 4 KiB on every call (as
// much time as the codec itself). It holds the largest call's buffers until
// the communicator is destroyed. Uninitialized: every byte sent is written
// by the codec first.
class Scratch {
 public:
  uint8_t* get(size_t bytes) {
    if (bytes > size_) {
      data_.reset();
      data_.reset(new uint8_t[bytes]);
      size_ = bytes;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

thread_local Scratch sendScratch, recvScratch, accScratch;

float* accumulator(size_t count) {
  return reinterpret_cast<float*>(accScratch.get(std::max<size_t>(count, 1) * 4));
}

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

// Quantizes `count` elements into a slot of `slotBytes` (>= their chunk),
// zeroing the rest of the slot so that every byte sent is defined.
void quantizeIntoSlot(const void* in, DType dtype, size_t count, const QuantSpec& spec,
                      const Rounding& rounding, uint64_t indexBase, float* residual,
                      uint8_t* slot, size_t slotBytes) {
  size_t used = 0;
  if (count > 0) {
    quantizeChunk(in, dtype, count, spec.format, spec.blockSize, rounding, indexBase, residual,
                  slot);
    used = chunkBytes(count, spec.format, spec.blockSize);
  }
  std::memset(slot + used, 0, slotBytes - used);
}

// Writes the float32 `acc` to `out` in `dtype` (half types rounded once).
void store(const float* acc, size_t count, DType dtype, void* out) {
  if (dtype == DType::kFloat32) {
    std::memcpy(out, acc, count * 4);
  } else {
    narrowHalf(dtype, acc, static_cast<uint16_t*>(out), count);
  }
}

// Sums the `size` chunks of `count` elements in `recv` (in rank order, in
// float32) into `acc`; divides by size for avg.
void reduceChunks(const uint8_t* recv, size_t slotBytes, int size, size_t count,
                  const QuantSpec& spec, RedOp op, float* acc) {
  dequantizeChunk(recv, count, spec.format, spec.blockSize, DType::kFloat32, acc);
  for (int r = 1; r < size; r++) {
    accumulateChunk(recv + size_t(r) * slotBytes, count, spec.format, spec.blockSize, acc);
  }
  if (op == RedOp::kAvg) divideInPlace(DType::kFloat32, acc, count, size);
}

// Quantizes chunk r of `in` for rank r (each chunk its own blocks) and
// exchanges the chunks; returns the received ones, one slot per rank.
const uint8_t* exchangeQuantized(Backend& b, const void* in, size_t countPerRank, DType dtype,
                                 const QuantSpec& spec, float* residual, Millis timeout) {
  const int size = b.size();
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  uint8_t* send = sendScratch.get(slot * size_t(size));
  uint8_t* recv = recvScratch.get(slot * size_t(size));
  const Rounding rounding = roundingFor(spec, b.rank(), kStageExchange);
  for (int r = 0; r < size; r++) {
    const size_t first = size_t(r) * countPerRank;
    quantizeChunk(at(in, first, dtype), dtype, countPerRank, spec.format, spec.blockSize,
                  rounding, first, residual ? residual + first : nullptr,
                  send + size_t(r) * slot);
  }
  b.allToAll(send, recv, slot, DType::kUint8, timeout);
  return recv;
}

}  // namespace

void allToAllQuantized(Backend& b, const void* in, void* out, size_t countPerRank, DType dtype,
                       const QuantSpec& spec, float* residual, Millis timeout) {
  if (countPerRank == 0) return;
  const int size = b.size();
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  const uint8_t* recv = exchangeQuantized(b, in, countPerRank, dtype, spec, residual, timeout);
  for (int r = 0; r < size; r++) {
    dequantizeChunk(recv + size_t(r) * slot, countPerRank, spec.format, spec.blockSize,
                    dtype, at(out, size_t(r) * countPerRank, dtype));
  }
}

void reduceScatterQuantized(Backend& b, const void* in, void* out, size_t countPerRank,
                            DType dtype, RedOp op, const QuantSpec& spec, float* residual,
                            Millis timeout) {
  if (countPerRank == 0) return;
  const int size = b.size();
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  const uint8_t* recv = exchangeQuantized(b, in, countPerRank, dtype, spec, residual, timeout);
  float* acc = accumulator(countPerRank);
  reduceChunks(recv, slot, size, countPerRank, spec, op, acc);
  store(acc, countPerRank, dtype, out);
}

void allGatherQuantized(Backend& b, const void* in, void* out, size_t countPerRank,
                        DType dtype, const QuantSpec& spec, float* residual, Millis timeout) {
  if (countPerRank == 0) return;
  const int size = b.size();
  const size_t slot = chunkBytes(countPerRank, spec.format, spec.blockSize);
  uint8_t* send = sendScratch.get(slot);
  uint8_t* recv = recvScratch.get(slot * size_t(size));
  quantizeChunk(in, dtype, countPerRank, spec.format, spec.blockSize,
                roundingFor(spec, b.rank(), kStageExchange), 0, residual, send);
  b.allGather(send, recv, slot, DType::kUint8, timeout);
  // This rank's own chunk is dequantized from the bytes it sent too, so every
  // rank holds the same output.
  for (int r = 0; r < size; r++) {
    dequantizeChunk(recv + size_t(r) * slot, countPerRank, spec.format, spec.blockSize,
                    dtype, at(out, size_t(r) * countPerRank, dtype));
  }
}

void allReduceQuantized(Backend& b, const void* in, void* out, size_t count, DType dtype,
                        RedOp op, const QuantSpec& spec, float* residual, Millis timeout) {
  if (count == 0) return;
  const int size = b.size();
  const int rank = b.rank();
  const size_t shard = shardCount(count, size);
  auto countOf = [&](int r) {
    const size_t first = std::min(count, size_t(r) * shard);
    return std::min(shard, count - first);
  };
  const size_t slot = chunkBytes(shard, spec.format, spec.blockSize);

  // Stage 1: quantized reduce-scatter of the shards (one quantization).
  uint8_t* send = sendScratch.get(slot * size_t(size));
  uint8_t* recv = recvScratch.get(slot * size_t(size));
  const Rounding first = roundingFor(spec, rank, kStageExchange);
  for (int r = 0; r < size; r++) {
    const size_t start = std::min(count, size_t(r) * shard);
    quantizeIntoSlot(at(in, start, dtype), dtype, countOf(r), spec, first, start,
                     residual ? residual + start : nullptr, send + size_t(r) * slot, slot);
  }
  b.allToAll(send, recv, slot, DType::kUint8, timeout);
  const size_t mine = countOf(rank);
  float* acc = accumulator(mine);
  if (mine > 0) reduceChunks(recv, slot, size, mine, spec, op, acc);

  // Stage 2: quantized all-gather of the reduced shards (the second one).
  // Every rank, this one included, dequantizes the same bytes: the outputs
  // agree bit for bit.
  quantizeIntoSlot(acc, DType::kFloat32, mine, spec,
                   roundingFor(spec, rank, kStageReduced), size_t(rank) * shard,
                   residual ? residual + count : nullptr, send, slot);
  b.allGather(send, recv, slot, DType::kUint8, timeout);
  for (int r = 0; r < size; r++) {
    const size_t n = countOf(r);
    if (n == 0) continue;
    dequantizeChunk(recv + size_t(r) * slot, n, spec.format, spec.blockSize, dtype,
                    at(out, size_t(r) * shard, dtype));
  }
}

}  // namespace quant
}  // namespace collectives
