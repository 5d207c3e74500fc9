// Device memory a communicator keeps between calls (the quantized
// collectives' send, receive and accumulator areas), grown on demand. Only
// the queue thread that owns the stream uses it, and every use is ordered on
// that stream, so one area serves consecutive calls. Growing frees the old
// area with cudaFree, which waits for the device first: work still reading
// it finishes before the memory goes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gpu/cuda_api.h"

namespace collectives {
namespace gpu {

class DeviceScratch {
 public:
  DeviceScratch() = default;
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  ~DeviceScratch();

  // At least `bytes` bytes on the current device (throws CollectiveFailure).
  uint8_t* get(const CudaApi& cuda, size_t bytes);

 private:
  const CudaApi* cuda_ = nullptr;
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace gpu
}  // namespace collectives
