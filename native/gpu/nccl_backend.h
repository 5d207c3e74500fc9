// Backend over NCCL for device memory. The communicator is created inside the
// first device collective (every rank calls it): rank 0 asks NCCL for a unique
// id and puts it in the rendezvous store under the communicator's prefix, the
// others wait for it, then each rank joins on the device of the buffer.
//
// Every call runs on the communicator's queue thread: it enqueues the NCCL
// operation on this backend's stream, records an event and polls it with
// short sleeps, checking ncclCommGetAsyncError and the call's timeout between
// polls (the watchdog). On an asynchronous error or a timeout the NCCL
// communicator is aborted and the call throws CollectiveFailure; the next
// device call creates a fresh one. One queue thread per communicator, no
// thread per operation; device operations therefore do not overlap yet.
#pragma once

#include <memory>
#include <string>

#include <gloo/rendezvous/store.h>

#include "../backend.h"
#include "gpu/cuda_api.h"
#include "gpu/nccl_api.h"

namespace collectives {
namespace gpu {

class NcclBackend : public Backend {
 public:
  // Joins the NCCL communicator `key` of `size` ranks on `device`.
  static std::shared_ptr<NcclBackend> connect(gloo::rendezvous::Store& store,
                                              const std::string& key, int rank, int size,
                                              int device, Millis timeout);
  ~NcclBackend() override;

  const char* name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int device() const { return device_; }
  bool aborted() const { return comm_ == nullptr; }

  // ncclGroupStart: the calls until endGroup are enqueued together and return
  // without waiting. endGroup: ncclGroupEnd, then waits for them all.
  void beginGroup();
  void endGroup(Millis timeout);

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
  void allToAll(const void* in, void* out, size_t countPerRank, DType dtype,
                Millis timeout) override;
  void allToAllV(const void* in, const std::vector<int64_t>& inCounts, void* out,
                 const std::vector<int64_t>& outCounts, DType dtype, Millis timeout) override;
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
  // Records the event after the enqueued work and waits for it (the watchdog).
  void complete(const char* operation, Millis timeout);
  void abortComm();
  // Grouped send/recv: counts and displacements in elements.
  void exchange(const char* operation, const void* in, const std::vector<size_t>& inCounts,
                void* out, const std::vector<size_t>& outCounts, DType dtype, Millis timeout);

  const NcclApi* nccl_ = nullptr;
  const CudaApi* cuda_ = nullptr;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t event_ = nullptr;
  bool grouped_ = false;
  bool groupBroken_ = false;  // a call inside the group failed and aborted
  int rank_;
  int size_;
  int device_;
};

}  // namespace gpu
}  // namespace collectives
