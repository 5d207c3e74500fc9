#include "gpu/nccl_backend.h"

#include <chrono>
#include <cstring>
#include <thread>

#include "errors.h"
#include "gpu/nccl_completion.h"
#include "gpu/nccl_init.h"

namespace collectives {
namespace gpu {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void unsupported(const char* operation) {
  throw CollectiveFailure(codes::kInvalidArgument,
                          std::string(operation) + ": not supported on device buffers yet");
}

}  // namespace

std::shared_ptr<NcclBackend> NcclBackend::connect(gloo::rendezvous::Store& store,
                                                  const std::string& key, int rank, int size,
                                                  int device, Millis timeout) {
  const NcclStatus& ns = nccl();
  const CudaStatus& cs = cuda();
  if (!cs.available) {
    throw CollectiveFailure(codes::kBackendUnavailable, "CUDA is not available: " + cs.reason);
  }
  if (!ns.available) {
    throw CollectiveFailure(codes::kBackendUnavailable, "NCCL is not available: " + ns.reason);
  }
  const auto deadline = Clock::now() + timeout;
  std::shared_ptr<NcclBackend> b(new NcclBackend(rank, size, device));
  b->nccl_ = ns.api;
  b->cuda_ = cs.api;
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (rank == 0) {
    b->check("ncclGetUniqueId", ns.api->ncclGetUniqueId(&id));
    store.set(key, std::vector<char>(id.internal, id.internal + sizeof id.internal));
  } else {
    store.wait({key}, timeout);
    std::vector<char> bytes = store.get(key);
    if (bytes.size() != sizeof id.internal) {
      throw CollectiveFailure(codes::kInternal, "init: the NCCL unique id in the store has " +
                                                    std::to_string(bytes.size()) + " bytes");
    }
    std::memcpy(id.internal, bytes.data(), bytes.size());
  }
  b->checkCuda("cudaSetDevice", cs.api->cudaSetDevice(device));
  b->checkCuda("cudaStreamCreateWithFlags",
               cs.api->cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking));
  // One deadline for the store and the init together.
  b->comm_ = initNcclComm(*ns.api, size, id, rank, deadline, timeout);
  return b;
}

NcclBackend::~NcclBackend() {
  // Every completion holds this backend, so no event is in use any more.
  if (comm_) nccl_->ncclCommDestroy(comm_);
  for (cudaEvent_t e : events_) cuda_->cudaEventDestroy(e);
  if (stream_) cuda_->cudaStreamDestroy(stream_);
}

bool NcclBackend::aborted() {
  std::lock_guard<std::mutex> lock(mu_);
  if (abortPending_ && !grouped_) abortLocked(true);
  return comm_ == nullptr;
}

void NcclBackend::abort() {
  std::lock_guard<std::mutex> lock(mu_);
  abortLocked(false);
}

void NcclBackend::abortLocked(bool onQueueThread) {
  if (grouped_) {
    if (!onQueueThread) {
      abortPending_ = true;
      return;
    }
    // Close the thread's group before the communicator goes.
    nccl_->ncclGroupEnd();
    grouped_ = false;
    groupBroken_ = true;
  }
  abortPending_ = false;
  if (comm_) {
    nccl_->ncclCommAbort(comm_);
    comm_ = nullptr;
  }
}

void NcclBackend::startCall(const char* operation, Millis timeout) {
  callOperation_ = operation;
  callTimeout_ = timeout;
  callDeadline_ = Clock::now() + timeout;
}

void NcclBackend::ready(const char* operation, Millis timeout) {
  startCall(operation, timeout);
  if (abortPending_) abortLocked(true);
  if (!comm_) {
    throw CollectiveFailure(codes::kAborted,
                            std::string(operation) + ": the NCCL communicator was aborted");
  }
  checkCuda("cudaSetDevice", cuda_->cudaSetDevice(device_));
}

void NcclBackend::check(const char* operation, ncclResult_t result) {
  // A non-blocking communicator may still be enqueuing: the event recorded
  // next must come after the work, so wait for it (not inside a group, where
  // the calls only take effect at ncclGroupEnd).
  if (result == ncclInProgress && !grouped_ && comm_) {
    result = settleComm(*nccl_, comm_, callDeadline_);
    if (result == ncclInProgress) {
      abortLocked(true);
      throw CollectiveFailure(codes::kTimeout,
                              std::string(callOperation_) + ": " + operation +
                                  " was still in progress after " +
                                  std::to_string(callTimeout_.count()) +
                                  " ms; the NCCL communicator was aborted");
    }
  }
  if (result == ncclSuccess || result == ncclInProgress) return;
  std::string message = nccl_->describe(operation, result);
  abortLocked(true);
  throw CollectiveFailure(codes::kInternal, message);
}

void NcclBackend::checkCuda(const char* operation, cudaError_t error) {
  if (error == cudaSuccess) return;
  throw CollectiveFailure(codes::kInternal, cuda_->describe(operation, error));
}

void NcclBackend::complete(const char* operation, Millis timeout) {
  if (grouped_) return;  // the group's completion is recorded by endGroup
  cudaEvent_t event = nullptr;
  {
    std::lock_guard<std::mutex> lock(eventsMu_);
    if (!events_.empty()) {
      event = events_.back();
      events_.pop_back();
    }
  }
  if (!event) {
    checkCuda("cudaEventCreateWithFlags",
              cuda_->cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  }
  cudaError_t recorded = cuda_->cudaEventRecord(event, stream_);
  if (recorded != cudaSuccess) {
    recycleEvent(event);
    checkCuda("cudaEventRecord", recorded);
  }
  issued_ = std::make_unique<NcclCompletion>(shared_from_this(), event, operation, timeout);
}

void NcclBackend::recycleEvent(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(eventsMu_);
  // A few idle events cover the usual depth of in-flight work; more are
  // created on demand and destroyed here.
  if (events_.size() < 64) {
    events_.push_back(event);
  } else {
    cuda_->cudaEventDestroy(event);
  }
}

void NcclBackend::watch(const char* operation, cudaEvent_t event, Clock::time_point deadline,
                        Millis timeout) {
  // The waiter thread may never have used this device; make it current for
  // the queries and a possible abort.
  cuda_->cudaSetDevice(device_);
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Checked first: after an abort the event may complete over garbage.
      if (!comm_ || abortPending_) {
        throw CollectiveFailure(codes::kAborted,
                                std::string(operation) +
                                    ": an earlier device operation failed and the NCCL "
                                    "communicator was aborted");
      }
      cudaError_t q = cuda_->cudaEventQuery(event);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) {
        abortLocked(false);
        throw CollectiveFailure(codes::kInternal, cuda_->describe(operation, q));
      }
      ncclResult_t async = ncclSuccess;
      nccl_->ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        std::string message = nccl_->describe(operation, async);
        abortLocked(false);
        // A remote or system error (NCCL's 2 and 6) usually means a peer is gone.
        throw CollectiveFailure(async == 2 || async == 6 ? codes::kPeerLost : codes::kInternal,
                                message);
      }
      if (Clock::now() >= deadline) {
        abortLocked(false);
        throw CollectiveFailure(codes::kTimeout, std::string(operation) + ": timed out after " +
                                                     std::to_string(timeout.count()) +
                                                     " ms; the NCCL communicator was aborted");
      }
    }
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::microseconds(1000)) pause *= 2;
  }
}

// Holds mu_ for the rest of the calling method.
#define NCCL_READY(op, timeout)            \
  std::lock_guard<std::mutex> lock_(mu_); \
  ready(op, timeout)

void NcclBackend::allReduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                            Millis timeout) {
  NCCL_READY("allReduce", timeout);
  check("ncclAllReduce", nccl_->ncclAllReduce(in, out, count, ncclDataTypeOf(dtype),
                                              ncclRedOpOf(op), comm_, stream_));
  complete("allReduce", timeout);
}

void NcclBackend::reduceScatter(const void* in, void* out, size_t countPerRank, DType dtype,
                                RedOp op, Millis timeout) {
  NCCL_READY("reduceScatter", timeout);
  check("ncclReduceScatter",
        nccl_->ncclReduceScatter(in, out, countPerRank, ncclDataTypeOf(dtype), ncclRedOpOf(op),
                                 comm_, stream_));
  complete("reduceScatter", timeout);
}

void NcclBackend::allGather(const void* in, void* out, size_t countPerRank, DType dtype,
                            Millis timeout) {
  NCCL_READY("allGather", timeout);
  check("ncclAllGather",
        nccl_->ncclAllGather(in, out, countPerRank, ncclDataTypeOf(dtype), comm_, stream_));
  complete("allGather", timeout);
}

void NcclBackend::broadcast(void* data, size_t count, DType dtype, int root, Millis timeout) {
  NCCL_READY("broadcast", timeout);
  check("ncclBroadcast",
        nccl_->ncclBroadcast(data, data, count, ncclDataTypeOf(dtype), root, comm_, stream_));
  complete("broadcast", timeout);
}

void NcclBackend::reduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                         int root, Millis timeout) {
  NCCL_READY("reduce", timeout);
  // NCCL ignores the receive buffer off the root; pass the input there.
  void* recv = out ? out : const_cast<void*>(in);
  check("ncclReduce", nccl_->ncclReduce(in, recv, count, ncclDataTypeOf(dtype), ncclRedOpOf(op),
                                        root, comm_, stream_));
  complete("reduce", timeout);
}

void NcclBackend::makeCurrent() {
  checkCuda("cudaSetDevice", cuda_->cudaSetDevice(device_));
}

void NcclBackend::recordCompletion(const char* operation, Millis timeout) {
  NCCL_READY(operation, timeout);
  if (grouped_) {
    throw CollectiveFailure(codes::kInvalidArgument,
                            std::string(operation) + ": cannot run inside group()");
  }
  complete(operation, timeout);
}

void NcclBackend::beginGroup() {
  NCCL_READY("group", Millis(0));
  check("ncclGroupStart", nccl_->ncclGroupStart());
  grouped_ = true;
}

void NcclBackend::endGroup(Millis timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (abortPending_) abortLocked(true);
  if (groupBroken_) {
    groupBroken_ = false;
    throw CollectiveFailure(codes::kAborted,
                            "group: a call in the group failed and the NCCL communicator was aborted");
  }
  if (!grouped_) return;
  grouped_ = false;
  if (!comm_) {
    throw CollectiveFailure(codes::kAborted, "group: the NCCL communicator was aborted");
  }
  startCall("group", timeout);
  check("ncclGroupEnd", nccl_->ncclGroupEnd());
  complete("group", timeout);
}

void NcclBackend::barrier(Millis) { unsupported("barrier"); }

void NcclBackend::exchange(const char* operation, const void* in,
                           const std::vector<size_t>& inCounts, void* out,
                           const std::vector<size_t>& outCounts, DType dtype, Millis timeout) {
  NCCL_READY(operation, timeout);
  const size_t esize = dtypeSize(dtype);
  const int t = ncclDataTypeOf(dtype);
  const char* src = static_cast<const char*>(in);
  char* dst = static_cast<char*>(out);
  check("ncclGroupStart", nccl_->ncclGroupStart());
  ncclResult_t failed = ncclSuccess;
  const char* what = "ncclGroupEnd";
  size_t inAt = 0, outAt = 0;
  for (int r = 0; r < size_ && failed == ncclSuccess; r++) {
    if (inCounts[r] > 0) {
      failed = nccl_->ncclSend(src + inAt * esize, inCounts[r], t, r, comm_, stream_);
      if (failed != ncclSuccess) what = "ncclSend";
    }
    if (failed == ncclSuccess && outCounts[r] > 0) {
      failed = nccl_->ncclRecv(dst + outAt * esize, outCounts[r], t, r, comm_, stream_);
      if (failed != ncclSuccess) what = "ncclRecv";
    }
    inAt += inCounts[r];
    outAt += outCounts[r];
  }
  ncclResult_t end = nccl_->ncclGroupEnd();
  check(what, failed != ncclSuccess ? failed : end);
  complete(operation, timeout);
}

void NcclBackend::allToAll(const void* in, void* out, size_t countPerRank, DType dtype,
                           Millis timeout) {
  if (nccl_->ncclAlltoAll) {
    NCCL_READY("allToAll", timeout);
    check("ncclAlltoAll", nccl_->ncclAlltoAll(in, out, countPerRank, ncclDataTypeOf(dtype),
                                              comm_, stream_));
    complete("allToAll", timeout);
    return;
  }
  std::vector<size_t> counts(size_t(size_), countPerRank);
  exchange("allToAll", in, counts, out, counts, dtype, timeout);
}

void NcclBackend::allToAllV(const void* in, const std::vector<int64_t>& inCounts, void* out,
                            const std::vector<int64_t>& outCounts, DType dtype,
                            Millis timeout) {
  std::vector<size_t> ins(inCounts.begin(), inCounts.end());
  std::vector<size_t> outs(outCounts.begin(), outCounts.end());
  exchange("allToAllV", in, ins, out, outs, dtype, timeout);
}

void NcclBackend::send(const void* data, size_t count, DType dtype, int peer, Millis timeout) {
  NCCL_READY("send", timeout);
  check("ncclSend", nccl_->ncclSend(data, count, ncclDataTypeOf(dtype), peer, comm_, stream_));
  complete("send", timeout);
}

void NcclBackend::recv(void* data, size_t count, DType dtype, int peer, Millis timeout) {
  NCCL_READY("recv", timeout);
  check("ncclRecv", nccl_->ncclRecv(data, count, ncclDataTypeOf(dtype), peer, comm_, stream_));
  complete("recv", timeout);
}

// The communicator calls send/recv, which take a dtype and a timeout.
std::unique_ptr<PendingTransfer> NcclBackend::postSend(const void*, size_t, int, uint32_t) {
  unsupported("postSend");
}
std::unique_ptr<PendingTransfer> NcclBackend::postRecv(void*, size_t, int, uint32_t) {
  unsupported("postRecv");
}
std::shared_ptr<Backend> NcclBackend::split(int, int, const std::string&, Millis) {
  unsupported("split");
}

}  // namespace gpu
}  // namespace collectives
