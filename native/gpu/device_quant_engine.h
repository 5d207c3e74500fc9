// The quantized collectives' engine for device memory: the CUDA codec
// kernels of libcollectives_cuda and the NCCL byte exchanges, all enqueued on
// the NCCL communicator's stream in the order quantized_ops.cc gives them,
// so nothing waits on the host until the call's completion event. The
// kernels run block_math.h as the host codec does: a device call gives the
// bytes a host call gives for the same input.
#pragma once

#include <functional>

#include "gpu/cuda_api.h"
#include "gpu/device_scratch.h"
#include "gpu/kernels_api.h"
#include "quant/quant_engine.h"

namespace collectives {
namespace gpu {

class DeviceQuantEngine : public quant::QuantEngine {
 public:
  using Exchange = std::function<void(const uint8_t* send, uint8_t* recv, size_t slotBytes)>;

  DeviceQuantEngine(const KernelsApi& kernels, const CudaApi& cuda, cudaStream_t stream,
                    DeviceScratch* areas, int rank, int size, Exchange allToAll,
                    Exchange allGather)
      : kernels_(kernels), cuda_(cuda), stream_(stream), areas_(areas), rank_(rank),
        size_(size), allToAll_(std::move(allToAll)), allGather_(std::move(allGather)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  uint8_t* scratch(Area which, size_t bytes) override;
  void quantize(const void* in, DType dtype, size_t count, const quant::QuantSpec& spec,
                const quant::Rounding& rounding, uint64_t indexBase, float* residual,
                uint8_t* out) override;
  void dequantize(const uint8_t* in, size_t count, const quant::QuantSpec& spec, DType dtype,
                  void* out) override;
  void accumulate(const uint8_t* in, size_t count, const quant::QuantSpec& spec,
                  float* acc) override;
  void zero(uint8_t* bytes, size_t n) override;
  void divide(float* acc, size_t count, int divisor) override;
  void store(const float* acc, size_t count, DType dtype, void* out) override;
  void allToAll(const uint8_t* send, uint8_t* recv, size_t slotBytes) override {
    allToAll_(send, recv, slotBytes);
  }
  void allGather(const uint8_t* send, uint8_t* recv, size_t slotBytes) override {
    allGather_(send, recv, slotBytes);
  }

 private:
  // Throws CollectiveFailure for a kernel's non-zero return.
  void check(const char* kernel, int rc) const;

  const KernelsApi& kernels_;
  const CudaApi& cuda_;
  cudaStream_t stream_;
  DeviceScratch* areas_;
  int rank_;
  int size_;
  Exchange allToAll_;
  Exchange allGather_;
};

}  // namespace gpu
}  // namespace collectives
