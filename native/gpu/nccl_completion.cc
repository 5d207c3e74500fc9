#include "gpu/nccl_completion.h"

#include "gpu/nccl_backend.h"

namespace collectives {
namespace gpu {

NcclCompletion::NcclCompletion(std::shared_ptr<NcclBackend> backend, cudaEvent_t event,
                               const char* operation, Millis timeout)
    : backend_(std::move(backend)),
      event_(event),
      operation_(operation),
      timeout_(timeout),
      deadline_(Clock::now() + timeout) {}

NcclCompletion::~NcclCompletion() { backend_->recycleEvent(event_); }

void NcclCompletion::wait(Millis) { backend_->watch(operation_, event_, deadline_, timeout_); }

}  // namespace gpu
}  // namespace collectives
