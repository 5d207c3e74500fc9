// Joins an NCCL communicator within a deadline. Where the loaded NCCL has
// ncclCommInitRankConfig (2.14 and later) the communicator is made
// non-blocking and its state polled with ncclCommGetAsyncError until it
// leaves ncclInProgress; past the deadline it is aborted and the call throws
// TIMEOUT, so a rank that never joins cannot hold the others forever. Older
// NCCL only has the blocking ncclCommInitRank, which returns when every rank
// has joined or NCCL gives up: the deadline cannot bound it there.
//
// A non-blocking communicator may answer any later call with ncclInProgress:
// the backend then waits with settleComm before recording its event.
#pragma once

#include <chrono>

#include "../backend.h"
#include "gpu/nccl_api.h"

namespace collectives {
namespace gpu {

ncclComm_t initNcclComm(const NcclApi& api, int size, const ncclUniqueId& id, int rank,
                        std::chrono::steady_clock::time_point deadline, Millis timeout);

// Polls ncclCommGetAsyncError while it says ncclInProgress; returns the
// first other state (ncclSuccess or the error), or ncclInProgress when the
// deadline passed first.
ncclResult_t settleComm(const NcclApi& api, ncclComm_t comm,
                        std::chrono::steady_clock::time_point deadline);

}  // namespace gpu
}  // namespace collectives
