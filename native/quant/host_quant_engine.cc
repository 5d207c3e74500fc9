#include "host_quant_engine.h"

#include <cstring>
#include <memory>

#include "../reduce_ops.h"

namespace collectives {
namespace quant {
namespace {

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

thread_local Scratch areas[3];

}  // namespace

uint8_t* HostQuantEngine::scratch(Area which, size_t bytes) { return areas[which].get(bytes); }

void HostQuantEngine::quantize(const void* in, DType dtype, size_t count, const QuantSpec& spec,
                               const Rounding& rounding, uint64_t indexBase, float* residual,
                               uint8_t* out) {
  quantizeChunk(in, dtype, count, spec.format, spec.blockSize, rounding, indexBase, residual, out);
}

void HostQuantEngine::dequantize(const uint8_t* in, size_t count, const QuantSpec& spec,
                                 DType dtype, void* out) {
  dequantizeChunk(in, count, spec.format, spec.blockSize, dtype, out);
}

void HostQuantEngine::accumulate(const uint8_t* in, size_t count, const QuantSpec& spec,
                                 float* acc) {
  accumulateChunk(in, count, spec.format, spec.blockSize, acc);
}

void HostQuantEngine::zero(uint8_t* bytes, size_t n) { std::memset(bytes, 0, n); }

void HostQuantEngine::divide(float* acc, size_t count, int divisor) {
  divideInPlace(DType::kFloat32, acc, count, divisor);
}

void HostQuantEngine::store(const float* acc, size_t count, DType dtype, void* out) {
  if (dtype == DType::kFloat32) {
    std::memcpy(out, acc, count * 4);
  } else {
    narrowHalf(dtype, acc, static_cast<uint16_t*>(out), count);
  }
}

void HostQuantEngine::allToAll(const uint8_t* send, uint8_t* recv, size_t slotBytes) {
  backend_.allToAll(send, recv, slotBytes, DType::kUint8, timeout_);
}

void HostQuantEngine::allGather(const uint8_t* send, uint8_t* recv, size_t slotBytes) {
  backend_.allGather(send, recv, slotBytes, DType::kUint8, timeout_);
}

}  // namespace quant
}  // namespace collectives
