// The steps a quantized collective is made of, wherever its memory lives:
// the codec, the scratch it quantizes into, and the byte exchanges between
// ranks. quantized_ops.cc writes each collective once over this interface;
// the host engine runs the CPU codec and a Backend's exchanges, the device
// engine enqueues the CUDA codec kernels and NCCL on one stream. Both give
// the same bytes for the same input.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../dtype.h"
#include "codec.h"

namespace collectives {
namespace quant {

struct QuantSpec {
  Format format = Format::kInt8;
  size_t blockSize = kDefaultBlockSize;
  bool stochastic = false;
  uint64_t seed = 0;
};

class QuantEngine {
 public:
  virtual ~QuantEngine() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Scratch kept between calls; `which` names one of three independent
  // areas (send, receive, accumulator). Contents are undefined.
  enum Area { kSend = 0, kRecv = 1, kAcc = 2 };
  virtual uint8_t* scratch(Area which, size_t bytes) = 0;

  // One chunk of FORMAT.md's layout from `count` elements of `in`.
  virtual void quantize(const void* in, DType dtype, size_t count, const QuantSpec& spec,
                        const Rounding& rounding, uint64_t indexBase, float* residual,
                        uint8_t* out) = 0;
  virtual void dequantize(const uint8_t* in, size_t count, const QuantSpec& spec, DType dtype,
                          void* out) = 0;
  // acc[i] += dequantized element i (float32).
  virtual void accumulate(const uint8_t* in, size_t count, const QuantSpec& spec,
                          float* acc) = 0;
  virtual void zero(uint8_t* bytes, size_t n) = 0;
  // acc[i] /= divisor (avg).
  virtual void divide(float* acc, size_t count, int divisor) = 0;
  // out = acc in `dtype` (half types rounded once).
  virtual void store(const float* acc, size_t count, DType dtype, void* out) = 0;

  // Byte exchanges: slotBytes to and from every rank.
  virtual void allToAll(const uint8_t* send, uint8_t* recv, size_t slotBytes) = 0;
  virtual void allGather(const uint8_t* send, uint8_t* recv, size_t slotBytes) = 0;
};

}  // namespace quant
}  // namespace collectives
