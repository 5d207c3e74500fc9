#include "gpu/device_quant_engine.h"

#include <string>

#include "errors.h"

namespace collectives {
namespace gpu {

uint8_t* DeviceQuantEngine::scratch(Area which, size_t bytes) {
  return areas_[which].get(cuda_, bytes);
}

void DeviceQuantEngine::check(const char* kernel, int rc) const {
  if (rc == 0) return;
  throw CollectiveFailure(codes::kInternal,
                          kernels_.describe((std::string(kernel) + " kernel").c_str(), rc));
}

void DeviceQuantEngine::quantize(const void* in, DType dtype, size_t count,
                                 const quant::QuantSpec& spec, const quant::Rounding& rounding,
                                 uint64_t indexBase, float* residual, uint8_t* out) {
  check("quantize", kernels_.collectives_cuda_quantize(
                        in, int(dtype), count, int(spec.format), spec.blockSize,
                        rounding.stochastic ? 1 : 0, rounding.key, indexBase, residual, out,
                        stream_));
}

void DeviceQuantEngine::dequantize(const uint8_t* in, size_t count, const quant::QuantSpec& spec,
                                   DType dtype, void* out) {
  check("dequantize", kernels_.collectives_cuda_dequantize(in, count, int(spec.format),
                                                           spec.blockSize, int(dtype), out,
                                                           stream_));
}

void DeviceQuantEngine::accumulate(const uint8_t* in, size_t count, const quant::QuantSpec& spec,
                                   float* acc) {
  check("dequantize_accumulate",
        kernels_.collectives_cuda_dequantize_accumulate(in, count, int(spec.format),
                                                        spec.blockSize, acc, stream_));
}

void DeviceQuantEngine::zero(uint8_t* bytes, size_t n) {
  cudaError_t e = cuda_.cudaMemsetAsync(bytes, 0, n, stream_);
  if (e != cudaSuccess) {
    throw CollectiveFailure(codes::kInternal, cuda_.describe("cudaMemsetAsync", e));
  }
}

void DeviceQuantEngine::divide(float* acc, size_t count, int divisor) {
  check("divide", kernels_.collectives_cuda_divide(count, float(divisor), acc, stream_));
}

void DeviceQuantEngine::store(const float* acc, size_t count, DType dtype, void* out) {
  if (dtype == DType::kFloat32) {
    cudaError_t e = cuda_.cudaMemcpyAsync(out, acc, count * 4, cudaMemcpyDeviceToDevice, stream_);
    if (e != cudaSuccess) {
      throw CollectiveFailure(codes::kInternal, cuda_.describe("cudaMemcpyAsync", e));
    }
    return;
  }
  check("cast", kernels_.collectives_cuda_cast(acc, int(DType::kFloat32), out, int(dtype), count,
                                               stream_));
}

}  // namespace gpu
}  // namespace collectives
