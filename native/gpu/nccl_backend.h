// Backend over NCCL for device memory. The communicator is created inside the
// first device collective (every rank calls it): rank 0 asks NCCL for a unique
// id and puts it in the rendezvous store under the communicator's prefix, the
// others wait for it, then each rank joins on the device of the buffer, the
// whole within the call's timeout where NCCL allows it (gpu/nccl_init.h).
//
// Unlike the Backend contract, the collectives here return once the NCCL
// operation is enqueued on this backend's stream: the caller (the queue
// thread) then takes its completion with takeCompletion(), an event from a
// small pool recorded after the operation, and hands it to the waiter thread.
// So the queue thread issues the next operation while the GPU runs this one,
// and issue order is kept (one stream, one waiter). The waiter's watch()
// polls the event, ncclCommGetAsyncError and the deadline (the watchdog); on
// an asynchronous error or a timeout it aborts the NCCL communicator and the
// call fails with CollectiveFailure; work enqueued behind it fails ABORTED and
// the next device call creates a fresh communicator.
//
// Threads: the queue thread enqueues, the waiter thread watches and may abort.
// mu_ guards comm_ between them: an enqueue holds it for the NCCL call, so an
// abort never frees the communicator under a call. NCCL groups belong to the
// thread that opened them, so while the queue thread has a group open the
// waiter only marks the abort, and the queue thread carries it out when it
// next touches the backend.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

#include "../backend.h"
#include "gpu/cuda_api.h"
#include "gpu/device_scratch.h"
#include "gpu/nccl_api.h"

namespace collectives {
namespace gpu {

class NcclBackend : public Backend, public std::enable_shared_from_this<NcclBackend> {
 public:
  // Joins the NCCL communicator `key` of `size` ranks on `device`.
  static std::shared_ptr<NcclBackend> connect(gloo::rendezvous::Store& store,
                                              const std::string& key, int rank, int size,
                                              int device, Millis timeout);
  ~NcclBackend() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int device() const { return device_; }
  // Queue thread: whether the next call needs a fresh backend.
  bool aborted();
  // Any thread: aborts the NCCL communicator (ncclCommAbort), at once or,
  // while the queue thread holds a group open, at its next call.
  void abort();

  // ncclGroupStart: the calls until endGroup are enqueued together and leave
  // no completion. endGroup: ncclGroupEnd, the point where the group's
  // completion event is recorded.
  void beginGroup();
  void endGroup(Millis timeout);

  // Queue thread: work composed of kernels and NCCL calls (the quantized
  // collectives) enqueues its kernels on stream() after makeCurrent(), its
  // exchanges through the collectives above (whose completions it drops), and
  // ends with recordCompletion(), the event its Work completes through.
  // Not inside a group: the kernels would run before the group's exchanges.
  cudaStream_t stream() const { return stream_; }
  const CudaApi& cudaApi() const { return *cuda_; }
  void makeCurrent();
  void recordCompletion(const char* operation, Millis timeout);
  // The composed work's device scratch (send, receive, accumulator).
  DeviceScratch* scratch() { return scratch_; }

  // Queue thread: the completion of the last call, or null inside a group.
  std::unique_ptr<PendingTransfer> takeCompletion() { return std::move(issued_); }

  // Waiter thread (through NcclCompletion): returns when `event` has
  // completed; throws TIMEOUT, PEER_LOST or INTERNAL after aborting the
  // communicator, or ABORTED when an earlier failure aborted it.
  void watch(const char* operation, cudaEvent_t event,
             std::chrono::steady_clock::time_point deadline, Millis timeout);
  void recycleEvent(cudaEvent_t event);

  void allReduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                 Millis timeout) override;
  void reduceScatter(const void* in, void* out, size_t countPerRank, DType dtype,
                     RedOp op, Millis timeout) override;
  void allGather(const void* in, void* out, size_t countPerRank, DType dtype,
                 Millis timeout) override;
  void broadcast(void* data, size_t count, DType dtype, int root, Millis timeout) override;
  void reduce(const void* in, void* out, size_t count, DType dtype, RedOp op, int root,
              Millis timeout) override;
  // Stays on Gloo: the communicator never routes a barrier here.
  void barrier(Millis timeout) override;
  // ncclAlltoAll where the loaded NCCL has it (2.28+), else grouped send/recv.
  void allToAll(const void* in, void* out, size_t countPerRank, DType dtype,
                Millis timeout) override;
  // What allToAll runs on the loaded NCCL (for Communicator.algorithm).
  static const char* allToAllAlgorithm(const NcclApi& api) {
    return api.ncclAlltoAll ? "nccl alltoall" : "nccl send/recv";
  }
  void allToAllV(const void* in, const std::vector<int64_t>& inCounts, void* out,
                 const std::vector<int64_t>& outCounts, DType dtype, Millis timeout) override;
  // ncclSend / ncclRecv of `count` elements. NCCL matches them in issue
  // order between two ranks: a send and the matching receive issued in
  // different orders on the two sides (or a send to self) deadlock unless
  // they are in one group.
  void send(const void* data, size_t count, DType dtype, int peer, Millis timeout);
  void recv(void* data, size_t count, DType dtype, int peer, Millis timeout);
  // Not used: the communicator calls send/recv above.
  std::unique_ptr<PendingTransfer> postSend(const void* data, size_t bytes, int peer,
                                            uint32_t tag) override;
  std::unique_ptr<PendingTransfer> postRecv(void* data, size_t bytes, int peer,
                                            uint32_t tag) override;
  std::shared_ptr<Backend> split(int newRank, int newSize, const std::string& key,
                                 Millis timeout) override;

 private:
  NcclBackend(int rank, int size, int device) : rank_(rank), size_(size), device_(device) {}
  // Checks an NCCL call's result (aborting on failure).
  void check(const char* operation, ncclResult_t result);
  void checkCuda(const char* operation, cudaError_t error);
  // Records an event after the enqueued work and leaves its completion in
  // issued_ (nothing inside a group). Queue thread, mu_ held.
  void complete(const char* operation, Millis timeout);
  // mu_ held. From the waiter thread with a group open, only marks the abort.
  void abortLocked(bool onQueueThread);
  // Queue thread, mu_ held: throws ABORTED when the communicator is gone,
  // carrying out an abort the waiter marked.
  void ready(const char* operation, Millis timeout);
  // Queue thread, mu_ held: names the call and starts its deadline.
  void startCall(const char* operation, Millis timeout);
  // Grouped send/recv: counts and displacements in elements.
  void exchange(const char* operation, const void* in, const std::vector<size_t>& inCounts,
                void* out, const std::vector<size_t>& outCounts, DType dtype, Millis timeout);

  const NcclApi* nccl_ = nullptr;
  const CudaApi* cuda_ = nullptr;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::mutex mu_;
  // The pool of idle events. Its own lock, taken after mu_ or alone: a
  // completion gives its event back from wherever it is destroyed.
  std::mutex eventsMu_;
  std::vector<cudaEvent_t> events_;
  std::unique_ptr<PendingTransfer> issued_;
  DeviceScratch scratch_[3];
  // The call being enqueued (queue thread, mu_): for waiting out ncclInProgress.
  const char* callOperation_ = "";
  Millis callTimeout_{0};
  std::chrono::steady_clock::time_point callDeadline_;
  bool abortPending_ = false;  // marked by the waiter inside a group; mu_
  bool grouped_ = false;
  bool groupBroken_ = false;  // a call inside the group failed and aborted
  int rank_;
  int size_;
  int device_;
};

}  // namespace gpu
}  // namespace collectives
