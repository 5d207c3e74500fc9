#include "gpu/device_scratch.h"

#include "errors.h"

namespace collectives {
namespace gpu {

DeviceScratch::~DeviceScratch() {
  if (data_ && cuda_) cuda_->cudaFree(data_);
}

uint8_t* DeviceScratch::get(const CudaApi& cuda, size_t bytes) {
  if (bytes <= size_ && data_) return static_cast<uint8_t*>(data_);
  if (data_) {
    cuda.cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  cuda_ = &cuda;
  void* p = nullptr;
  cudaError_t e = cuda.cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    throw CollectiveFailure(codes::kInternal,
                            cuda.describe(("cudaMalloc of " + std::to_string(bytes) +
                                           " bytes of quantization scratch").c_str(),
                                          e));
  }
  data_ = p;
  size_ = bytes;
  return static_cast<uint8_t*>(data_);
}

}  // namespace gpu
}  // namespace collectives
