// The interface every engine implements. A Backend runs one operation at a
// time on the calling thread (the communicator's queue thread) and throws
// CollectiveFailure on error. Pointers stay valid for the whole call: the
// communicator pins the JavaScript buffers until the operation completes.
// The NCCL backend is the exception: its calls return once the operation is
// enqueued on its CUDA stream and leave a completion for the waiter thread
// (gpu/nccl_backend.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"

namespace collectives {

using Millis = std::chrono::milliseconds;

// Work whose completion is awaited later on the waiter thread: a posted
// point-to-point transfer, so that a send and the matching receive never wait
// on each other's queue, or device work enqueued on a CUDA stream, so that the
// queue thread issues the next operation while the GPU runs this one.
class PendingTransfer {
 public:
  virtual ~PendingTransfer() = default;
  virtual void wait(Millis timeout) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // `in` may equal `out` (in place). Counts are in elements.
  virtual void allReduce(const void* in, void* out, size_t count, DType dtype,
                         RedOp op, Millis timeout) = 0;
  // in: size() * countPerRank elements; out: countPerRank elements.
  virtual void reduceScatter(const void* in, void* out, size_t countPerRank,
                             DType dtype, RedOp op, Millis timeout) = 0;
  // in: countPerRank elements; out: size() * countPerRank elements.
  virtual void allGather(const void* in, void* out, size_t countPerRank,
                         DType dtype, Millis timeout) = 0;
  virtual void broadcast(void* data, size_t count, DType dtype, int root,
                         Millis timeout) = 0;
  // The result lands in `out` on the root only; `out` is ignored elsewhere.
  virtual void reduce(const void* in, void* out, size_t count, DType dtype,
                      RedOp op, int root, Millis timeout) = 0;
  virtual void barrier(Millis timeout) = 0;
  // in and out: size() * countPerRank elements; they must not overlap.
  virtual void allToAll(const void* in, void* out, size_t countPerRank,
                        DType dtype, Millis timeout) = 0;
  // inCounts[r] elements go to rank r; outCounts[r] elements come from rank r.
  virtual void allToAllV(const void* in, const std::vector<int64_t>& inCounts,
                         void* out, const std::vector<int64_t>& outCounts,
                         DType dtype, Millis timeout) = 0;

  virtual std::unique_ptr<PendingTransfer> postSend(const void* data, size_t bytes,
                                                    int peer, uint32_t tag) = 0;
  virtual std::unique_ptr<PendingTransfer> postRecv(void* data, size_t bytes,
                                                    int peer, uint32_t tag) = 0;

  // A backend over the ranks that share this rank's color. Called by every
  // member in the same order; `key` names the rendezvous namespace.
  virtual std::shared_ptr<Backend> split(int newRank, int newSize,
                                         const std::string& key,
                                         Millis timeout) = 0;
  // The same, told which ranks of this backend become the new one's, in
  // their new order: an engine that forms groups from its own ranks (MPI)
  // needs them; the others meet through the store and ignore them.
  virtual std::shared_ptr<Backend> splitRanks(const std::vector<int>& parentRanks,
                                              int newRank, const std::string& key,
                                              Millis timeout) {
    return split(newRank, int(parentRanks.size()), key, timeout);
  }
};

}  // namespace collectives
