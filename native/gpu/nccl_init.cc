#include "gpu/nccl_init.h"

#include <thread>

#include "errors.h"

namespace collectives {
namespace gpu {

using Clock = std::chrono::steady_clock;

ncclResult_t settleComm(const NcclApi& api, ncclComm_t comm, Clock::time_point deadline) {
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t r = api.ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) return r;
    if (state != ncclInProgress) return state;
    if (Clock::now() >= deadline) return ncclInProgress;
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(2)) pause *= 2;
  }
}

ncclComm_t initNcclComm(const NcclApi& api, int size, const ncclUniqueId& id, int rank,
                        Clock::time_point deadline, Millis timeout) {
  ncclComm_t comm = nullptr;
  if (!api.ncclCommInitRankConfig) {
    ncclResult_t r = api.ncclCommInitRank(&comm, size, id, rank);
    if (r != ncclSuccess) {
      throw CollectiveFailure(codes::kInternal, api.describe("ncclCommInitRank", r));
    }
    return comm;
  }
  NcclConfig config;
  config.blocking = 0;
  ncclResult_t r = api.ncclCommInitRankConfig(&comm, size, id, rank, &config);
  if (r == ncclInProgress && comm) r = settleComm(api, comm, deadline);
  if (r == ncclSuccess) return comm;
  if (comm) api.ncclCommAbort(comm);
  if (r == ncclInProgress) {
    throw CollectiveFailure(
        codes::kTimeout,
        "ncclCommInitRankConfig: rank " + std::to_string(rank) + " of " + std::to_string(size) +
            " did not finish joining the NCCL communicator within " +
            std::to_string(timeout.count()) +
            " ms (every rank must make the same first device call); it was aborted");
  }
  // A remote or system error (NCCL's 2 and 6) while joining usually means a peer is gone.
  throw CollectiveFailure(r == 2 || r == 6 ? codes::kPeerLost : codes::kInternal,
                          api.describe("ncclCommInitRankConfig", r));
}

}  // namespace gpu
}  // namespace collectives
