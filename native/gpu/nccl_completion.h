// The completion of device work enqueued by the NCCL backend: a CUDA event
// recorded on the backend's stream right after the work. The waiter thread
// calls wait(), which polls the event, ncclCommGetAsyncError and the deadline
// (the watchdog) through the backend; no thread per operation. The event goes
// back to the backend's pool when the completion is destroyed.
#pragma once

#include <chrono>
#include <memory>

#include "../backend.h"
#include "gpu/cuda_api.h"

namespace collectives {
namespace gpu {

class NcclBackend;

class NcclCompletion : public PendingTransfer {
 public:
  using Clock = std::chrono::steady_clock;
  NcclCompletion(std::shared_ptr<NcclBackend> backend, cudaEvent_t event, const char* operation,
                 Millis timeout);
  ~NcclCompletion() override;
  // The timeout counts from the enqueue, not from the start of this wait:
  // the argument is ignored.
  void wait(Millis) override;

 private:
  std::shared_ptr<NcclBackend> backend_;
  cudaEvent_t event_;
  const char* operation_;
  Millis timeout_;
  Clock::time_point deadline_;
};

}  // namespace gpu
}  // namespace collectives
