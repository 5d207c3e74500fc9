// The NCCL side of a Communicator, shared by its device methods
// (communicator_device.cc) and close().
#pragma once

#include <atomic>
#include <memory>

#include "gpu/nccl_backend.h"

namespace collectives {

// `backend` and `generation` belong to the queue thread, which replaces the
// backend with std::atomic_store so that abort() may read it on the JS thread
// (std::atomic_load); `device` is set on the JS thread by the first device call.
struct NcclState {
  std::shared_ptr<gpu::NcclBackend> backend;
  int generation = 0;
  int device = -1;
  // Queue thread: a group is open; started once its first device call runs
  // (the NCCL communicator exists by then).
  bool groupOpen = false;
  bool groupStarted = false;
};

}  // namespace collectives
