// The process's one MPI: initialized once, on the JavaScript main thread, at
// the first init({ engine: 'mpi' }), and finalized at process exit.
//
// Threading: MPI is initialized at MPI_THREAD_SERIALIZED and every MPI call
// of the addon is made under lock() (one process-wide mutex). Each
// communicator's queue thread issues its non-blocking operation and tests it
// (MPI_Test) under the lock, releasing it between tests, and the waiter
// thread does the same for point-to-point requests; so several communicators
// and threads share MPI without MPI_THREAD_MULTIPLE, which not every build
// provides and which costs Open MPI a lock of its own on every call anyway.
// Progress is made only while a thread tests (Open MPI has no progress
// thread for the shared-memory and TCP transports): a communicator with work
// in flight always has a thread testing it.
//
// Lifecycle: initialize() on the JS thread (it may take a fraction of a
// second: the launcher exchanges every rank's addresses), then any thread
// under lock(); at exit, finalize unless an operation was abandoned (a
// timeout, a lost peer): MPI_Finalize synchronizes with every other rank and
// would wait forever for a dead one. After finalize every call fails with
// ABORTED instead of reaching MPI.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "mpi/mpi_api.h"

namespace collectives {
namespace mpi {

class MpiRuntime {
 public:
  static MpiRuntime& get();

  // JS thread. Initializes MPI the first time; throws CollectiveFailure
  // (BACKEND_UNAVAILABLE) when libmpi is missing or MPI cannot start.
  void initialize();
  bool initialized() const { return initialized_.load(); }

  const MpiApi& api() const { return *api_; }
  // Held around every MPI call. Throws ABORTED once MPI has been finalized.
  std::unique_lock<std::mutex> lock();
  // An operation was left behind (it timed out or a peer died): skip
  // MPI_Finalize at exit.
  void markAbandoned() { abandoned_.store(true); }

  // The MPI op that reduces `dtype` with `op` (AVG: the sum; the caller
  // divides). Mostly MPI's own; the engine's own where MPI's differs:
  //  - half types on 16-bit wire data: each pair of elements is combined in
  //    float32 and rounded once. With two ranks every element is combined
  //    exactly once, so the result is the float32 result rounded once, as the
  //    Gloo engine computes it; AVG then halves the pair's sum (two ranks only);
  //  - int8 and uint8 sum and product: Open MPI 4.1's AVX op component
  //    saturates 8-bit sums (127 + 1 = 127), where torch, NCCL and the Gloo
  //    engine wrap around.
  MPI_Op reduceOp(DType dtype, RedOp op) const;

  // The thread level MPI provided, e.g. "MPI_THREAD_SERIALIZED".
  std::string threadLevel() const;

 private:
  MpiRuntime() = default;
  static void finalizeAtExit();

  std::mutex initMu_;
  std::atomic<bool> initialized_{false};
  const MpiApi* api_ = nullptr;
  bool owned_ = false;  // this addon called MPI_Init_thread (and so finalizes)
  int provided_ = -1;
  std::mutex mu_;
  bool finalized_ = false;  // under mu_
  std::atomic<bool> abandoned_{false};
  // [float16, bfloat16] x [sum, prod, min, max, avg]
  MPI_Op halfOps_[2][5] = {};
  // [int8, uint8] x [sum, prod]
  MPI_Op byteOps_[2][2] = {};
};

}  // namespace mpi
}  // namespace collectives
