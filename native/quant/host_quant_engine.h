// The quantized collectives' engine for host memory: the CPU codec, scratch
// kept by the calling thread, and a Backend's byte all-to-all / all-gather
// (Gloo). Runs on the communicator's queue thread.
#pragma once

#include "../backend.h"
#include "quant_engine.h"

namespace collectives {
namespace quant {

class HostQuantEngine : public QuantEngine {
 public:
  HostQuantEngine(Backend& backend, Millis timeout) : backend_(backend), timeout_(timeout) {}

  int rank() const override { return backend_.rank(); }
  int size() const override { return backend_.size(); }
  uint8_t* scratch(Area which, size_t bytes) override;
  void quantize(const void* in, DType dtype, size_t count, const QuantSpec& spec,
                const Rounding& rounding, uint64_t indexBase, float* residual,
                uint8_t* out) override;
  void dequantize(const uint8_t* in, size_t count, const QuantSpec& spec, DType dtype,
                  void* out) override;
  void accumulate(const uint8_t* in, size_t count, const QuantSpec& spec, float* acc) override;
  void zero(uint8_t* bytes, size_t n) override;
  void divide(float* acc, size_t count, int divisor) override;
  void store(const float* acc, size_t count, DType dtype, void* out) override;
  void allToAll(const uint8_t* send, uint8_t* recv, size_t slotBytes) override;
  void allGather(const uint8_t* send, uint8_t* recv, size_t slotBytes) override;

 private:
  Backend& backend_;
  Millis timeout_;
};

}  // namespace quant
}  // namespace collectives
