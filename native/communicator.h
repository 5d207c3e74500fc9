// The N-API Communicator: checks arguments (the backstop behind the
// TypeScript layer), pins the buffers an operation reads or writes, and
// queues the operation on its WorkQueue. Every method returns a promise at
// once; the work runs off the JS thread in issue order.
#pragma once

#include <memory>
#include <vector>

#include <napi.h>

#include "gloo/algorithm_policy.h"
#include "diagnostics.h"
#include "rendezvous.h"
#include "work_queue.h"

namespace collectives {

namespace gpu {
class DeviceBuffer;
}

class Communicator : public Napi::ObjectWrap<Communicator> {
 public:
  static Napi::Function Define(Napi::Env env);
  // A new JS Communicator over `queue` (constructed only from native code).
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<WorkQueue> queue, int rank,
                           int size, const GlooTuning& tuning,
                           std::shared_ptr<Diagnostics> diagnostics,
                           std::shared_ptr<Rendezvous> rendezvous);
  // connect(options) -> Promise<Communicator>
  static Napi::Value Connect(const Napi::CallbackInfo& info);

  explicit Communicator(const Napi::CallbackInfo& info);
  ~Communicator() override;

 private:
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value ReduceScatter(const Napi::CallbackInfo& info);
  Napi::Value AllGather(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value Reduce(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  // A barrier that names the ranks that did not arrive (communicator_monitored.cc).
  Napi::Value MonitoredBarrier(const Napi::CallbackInfo& info);
  Napi::Value AllToAll(const Napi::CallbackInfo& info);
  Napi::Value AllToAllV(const Napi::CallbackInfo& info);
  // Collectives over DeviceBuffers, run by the NCCL backend.
  Napi::Value DeviceCollective(const Napi::CallbackInfo& info);
  Napi::Value DeviceAllToAllV(const Napi::CallbackInfo& info);
  Napi::Value DeviceSendRecv(const Napi::CallbackInfo& info);
  // deviceGroup(begin, timeoutMs): brackets device calls in ncclGroupStart/End.
  Napi::Value DeviceGroup(const Napi::CallbackInfo& info);
  // Quantized collectives over DeviceBuffers (communicator_device_quantized.cc).
  Napi::Value DeviceQuantized(const Napi::CallbackInfo& info);
  // Quantized collectives (quant/communicator_quantized.cc).
  Napi::Value AllToAllQuantized(const Napi::CallbackInfo& info);
  Napi::Value ReduceScatterQuantized(const Napi::CallbackInfo& info);
  Napi::Value AllGatherQuantized(const Napi::CallbackInfo& info);
  Napi::Value AllReduceQuantized(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Recv(const Napi::CallbackInfo& info);
  Napi::Value Split(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Algorithm(const Napi::CallbackInfo& info);
  // The host-memory engine: "gloo" or "mpi".
  Napi::Value GetEngine(const Napi::CallbackInfo& info);
  Napi::Value GetRank(const Napi::CallbackInfo& info);
  Napi::Value GetSize(const Napi::CallbackInfo& info);
  Napi::Value GetPending(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  // inlineCalls() -> { [method]: count }: the calls that ran on the calling
  // thread (issue()), by method, since the communicator was made.
  Napi::Value InlineCalls(const Napi::CallbackInfo& info);

  // A work that pins this communicator and the buffers it reads or writes,
  // unless it runs inline (`pinned` false): the call then returns only once
  // the operation is done with them.
  std::unique_ptr<Work> newWork(const Napi::CallbackInfo& info, const char* operation,
                                std::initializer_list<Napi::Value> buffers = {},
                                bool pinned = true);
  // The inline path: whether a host call of `kind` (`bytes` as
  // GlooBackend::describe counts them, `count` elements, `timeout`) may run
  // on the calling thread now. It may when it is small enough
  // (GlooTuning::inlineBytes), nothing is queued, running or awaited on this
  // communicator (so it overtakes nothing), and the Gloo backend would run it
  // on its synchronous pairs, where the calling thread does everything.
  bool inlineNow(CallKind kind, size_t bytes, size_t count, Millis timeout);
  // Queues `work`, or runs it here when `inlined` (inlineNow said so just
  // before the work was built); returns its promise.
  Napi::Value issue(Napi::Env env, std::unique_ptr<Work> work, CallKind kind, bool inlined);
  // Gives back this communicator's share of AddonData::groups, once.
  void uncount();
  // A work that also pins and leases the DeviceBuffers it uses
  // (communicator_device.cc).
  std::unique_ptr<Work> newDeviceWork(
      const Napi::CallbackInfo& info, const char* operation,
      const std::vector<std::pair<Napi::Value, gpu::DeviceBuffer*>>& buffers, Millis timeout);
  void checkOpen(Napi::Env env, const char* operation);
  int checkRoot(Napi::Env env, const Napi::Value& v, const char* name);
  void checkLength(Napi::Env env, const char* name, size_t got, size_t expected,
                   const char* what);
  Napi::Value PointToPoint(const Napi::CallbackInfo& info, bool isSend);
  Napi::Value Quantized(const Napi::CallbackInfo& info, int kind);

  std::shared_ptr<WorkQueue> queue_;
  std::shared_ptr<Diagnostics> diagnostics_;
  // Shared with the works that read it; its contents belong to the queue
  // thread (see rendezvous.h).
  std::shared_ptr<Rendezvous> rendezvous_;
  int rank_ = 0;
  int size_ = 1;
  // "gloo" or "mpi": which engine runs host calls (set by connect and split).
  std::string engine_ = "gloo";
  GlooTuning tuning_;
  // The NCCL backend, created by the first device call (queue thread).
  std::shared_ptr<struct NcclState> nccl_;
  // Calls run inline, indexed by CallKind. JS thread.
  uint64_t inlined_[32] = {};
  // The environment's count of open communicators of more than one rank
  // (AddonData::groups), which GlooTuning::inlineAlone reads; this one adds
  // to it while `counted_`. Shared, so that a communicator collected after
  // the environment's data never touches freed memory.
  std::shared_ptr<int> groups_;
  bool counted_ = false;
};

}  // namespace collectives
