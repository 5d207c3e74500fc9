// The Communicator's calls over DeviceBuffers (declared in communicator.h),
// run by the NCCL backend. Each is one Work on the communicator's queue: the
// queue thread joins the NCCL communicator on first use (or after an abort),
// enqueues the operation on the backend's stream and leaves its completion
// for the waiter thread. The buffers are pinned and their memory leased until
// the Work settles, so free() during the call never releases it under NCCL.
#include <string>

#include "args.h"
#include "communicator.h"
#include "errors.h"
#include "gpu/device_buffer.h"
#include "device_calls.h"
#include "nccl_state.h"

namespace collectives {

namespace {

// The collectives deviceCollective() runs.
bool isDeviceCollective(CallKind kind) {
  switch (kind) {
    case CallKind::kAllReduce:
    case CallKind::kReduceScatter:
    case CallKind::kAllGather:
    case CallKind::kBroadcast:
    case CallKind::kReduce:
    case CallKind::kAllToAll:
      return true;
    default:
      return false;
  }
}

}  // namespace

void checkDevice(Napi::Env env, NcclState& state, const gpu::DeviceBuffer& buffer,
                 const char* name) {
  if (state.device < 0) state.device = buffer.device();
  if (buffer.device() != state.device) {
    throwRangeError(env, std::string(name) + ": this communicator runs NCCL on device " +
                             std::to_string(state.device) + ", got a DeviceBuffer on device " +
                             std::to_string(buffer.device()));
  }
}

// NCCL has no in-place all-to-all; overlapping views would corrupt the input.
void checkDisjoint(Napi::Env env, const gpu::DeviceBuffer& in, const gpu::DeviceBuffer& out,
                   const char* name) {
  if (in.overlaps(out)) throwRangeError(env, std::string(name) + ": must not overlap the input's memory");
}

gpu::NcclBackend& ncclOn(NcclState& state, const Rendezvous& rendezvous, int rank, int size,
                         Millis timeout) {
  if (state.groupStarted && state.backend && state.backend->aborted()) {
    // A fresh communicator would run the rest of the group ungrouped; the
    // group's end reports the failure instead.
    throw CollectiveFailure(codes::kAborted,
                            "the NCCL communicator was aborted inside the open group");
  }
  if (!state.backend || state.backend->aborted()) {
    if (!rendezvous.store) {
      throw CollectiveFailure(codes::kInternal, "no rendezvous store for NCCL");
    }
    std::atomic_store(&state.backend, std::shared_ptr<gpu::NcclBackend>());
    const std::string key = rendezvous.prefix + "/nccl/" + std::to_string(state.generation++);
    // Atomic: abort() reads it on the JS thread.
    std::atomic_store(&state.backend, gpu::NcclBackend::connect(*rendezvous.store, key, rank,
                                                                size, state.device, timeout));
  }
  gpu::NcclBackend& nb = *state.backend;
  if (state.groupOpen && !state.groupStarted) {
    nb.beginGroup();
    state.groupStarted = true;
  }
  return nb;
}

std::unique_ptr<Work> Communicator::newDeviceWork(
    const Napi::CallbackInfo& info, const char* operation,
    const std::vector<std::pair<Napi::Value, gpu::DeviceBuffer*>>& buffers, Millis timeout) {
  auto work = newWork(info, operation);
  for (const auto& b : buffers) {
    work->pin(b.first);
    // The memory outlives a free() until the operation settles.
    work->leases.push_back(b.second->lease());
  }
  work->transferTimeout = timeout;
  work->lane = kDeviceLane;
  return work;
}

// deviceCollective(kind, input, output | null, op, root, timeoutMs): kind is
// allReduce, reduceScatter, allGather, broadcast, reduce or allToAll.
Napi::Value Communicator::DeviceCollective(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = stringArg(env, info[0], "kind");
  CallKind kind;
  if (!callKindFromMethod(name, &kind) || !isDeviceCollective(kind)) {
    throwRangeError(env, "kind: unknown device collective '" + name + "'");
  }
  const char* operation = callKindName(kind);
  checkOpen(env, operation);
  gpu::DeviceBuffer* in = deviceArg(env, info[1], "input");
  bool haveOut = !(info[2].IsNull() || info[2].IsUndefined());
  gpu::DeviceBuffer* out = haveOut ? deviceArg(env, info[2], "output") : in;
  DType dtype = in->dtype();
  if (out->dtype() != dtype) {
    throwTypeError(env, std::string("output: expected a DeviceBuffer of ") + dtypeName(dtype) +
                            ", got " + dtypeName(out->dtype()));
  }
  if (out->device() != in->device()) {
    throwRangeError(env, "output: expected a DeviceBuffer on device " +
                             std::to_string(in->device()) + ", got device " +
                             std::to_string(out->device()));
  }
  const bool reduces = kind == CallKind::kAllReduce || kind == CallKind::kReduceScatter ||
                       kind == CallKind::kReduce;
  const bool rooted = kind == CallKind::kBroadcast || kind == CallKind::kReduce;
  RedOp op = RedOp::kSum;
  if (reduces) op = redOpArg(env, info[3], dtype);
  if (isBitwise(op)) {
    throwTypeError(env, "op: expected a reduction NCCL has (sum, prod, min, max, avg); band, bor "
                        "and bxor run on host arrays only");
  }
  int root = 0;
  if (rooted) root = checkRoot(env, info[4], "root");
  Millis timeout = timeoutArg(env, info[5]);
  const size_t n = size_t(size_);
  size_t count = in->length();
  if (kind == CallKind::kAllReduce || kind == CallKind::kReduce || kind == CallKind::kAllToAll) {
    checkLength(env, "output", out->length(), in->length(), "the input's length");
  } else if (kind == CallKind::kReduceScatter) {
    checkLength(env, "input", in->length(), out->length() * n, "output length x world size");
    count = out->length();
  } else if (kind == CallKind::kAllGather) {
    checkLength(env, "output", out->length(), in->length() * n, "input length x world size");
  }
  if (kind == CallKind::kAllToAll) {
    if (in->length() % n != 0) {
      throwRangeError(env, "input: expected a length divisible by the world size (" +
                               std::to_string(size_) + "), got " + std::to_string(in->length()));
    }
    count = in->length() / n;
  }
  if (!nccl_) nccl_ = std::make_shared<NcclState>();
  checkDevice(env, *nccl_, *in, "input");
  void* inData = in->data(env);
  void* outData = out->data(env);
  if (kind == CallKind::kAllToAll) checkDisjoint(env, *in, *out);
  auto work = haveOut ? newDeviceWork(info, operation, {{info[1], in}, {info[2], out}}, timeout)
                      : newDeviceWork(info, operation, {{info[1], in}}, timeout);
  Work* raw = work.get();
  auto state = nccl_;
  auto rendezvous = rendezvous_;
  const int rank = rank_, size = size_;
  work->run = [=](std::shared_ptr<Backend>&) {
    gpu::NcclBackend& nb = ncclOn(*state, *rendezvous, rank, size, timeout);
    switch (kind) {
      case CallKind::kAllReduce:
        nb.allReduce(inData, outData, count, dtype, op, timeout);
        break;
      case CallKind::kReduceScatter:
        nb.reduceScatter(inData, outData, count, dtype, op, timeout);
        break;
      case CallKind::kAllGather:
        nb.allGather(inData, outData, count, dtype, timeout);
        break;
      case CallKind::kBroadcast:
        nb.broadcast(inData, count, dtype, root, timeout);
        break;
      case CallKind::kReduce:
        nb.reduce(inData, rank == root ? outData : nullptr, count, dtype, op, root, timeout);
        break;
      default:  // kAllToAll, the one isDeviceCollective leaves
        nb.allToAll(inData, outData, count, dtype, timeout);
        break;
    }
    // Awaited on the waiter thread while this thread issues the next call.
    raw->transfer = nb.takeCompletion();
  };
  diagnostics_->guard(*work, {kind, dtype, true, count, rooted ? root : -1,
                             reduces ? int32_t(op) : -1, true},
                      timeout);
  return queue_->push(env, std::move(work));
}

// deviceAllToAllV(input, inputCounts, output, outputCounts, timeoutMs)
Napi::Value Communicator::DeviceAllToAllV(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "allToAllV");
  gpu::DeviceBuffer* in = deviceArg(env, info[0], "input");
  std::vector<int64_t> inCounts = countsArg(env, info[1], "inputSplits", size_);
  gpu::DeviceBuffer* out = deviceArg(env, info[2], "output");
  std::vector<int64_t> outCounts = countsArg(env, info[3], "outputSplits", size_);
  Millis timeout = timeoutArg(env, info[4]);
  DType dtype = in->dtype();
  if (out->dtype() != dtype) {
    throwTypeError(env, std::string("output: expected a DeviceBuffer of ") + dtypeName(dtype) +
                            ", got " + dtypeName(out->dtype()));
  }
  int64_t inTotal = 0, outTotal = 0;
  for (int64_t c : inCounts) inTotal += c;
  for (int64_t c : outCounts) outTotal += c;
  if (inTotal != int64_t(in->length())) {
    throwRangeError(env, "inputSplits: expected counts summing to the input's length (" +
                             std::to_string(in->length()) + "), got " + std::to_string(inTotal));
  }
  if (outTotal != int64_t(out->length())) {
    throwRangeError(env, "outputSplits: expected counts summing to the output's length (" +
                             std::to_string(out->length()) + "), got " +
                             std::to_string(outTotal));
  }
  if (!nccl_) nccl_ = std::make_shared<NcclState>();
  checkDevice(env, *nccl_, *in, "input");
  checkDevice(env, *nccl_, *out, "output");
  void* inData = in->data(env);
  void* outData = out->data(env);
  checkDisjoint(env, *in, *out);
  auto work = newDeviceWork(info, "allToAllV", {{info[0], in}, {info[2], out}}, timeout);
  Work* raw = work.get();
  auto state = nccl_;
  auto rendezvous = rendezvous_;
  const int rank = rank_, size = size_;
  work->run = [=](std::shared_ptr<Backend>&) {
    gpu::NcclBackend& nb = ncclOn(*state, *rendezvous, rank, size, timeout);
    nb.allToAllV(inData, inCounts, outData, outCounts, dtype, timeout);
    raw->transfer = nb.takeCompletion();
  };
  diagnostics_->guard(*work, {CallKind::kAllToAllV, dtype, true, 0, -1, -1, true}, timeout);
  return queue_->push(env, std::move(work));
}

// deviceSendRecv(isSend, buffer, peer, timeoutMs): ncclSend / ncclRecv of the
// whole buffer. NCCL matches them by issue order between two ranks (no tags);
// a rank may send to itself inside a group.
Napi::Value Communicator::DeviceSendRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBoolean()) throwTypeError(env, "isSend: expected a boolean");
  const bool isSend = info[0].As<Napi::Boolean>().Value();
  const char* operation = isSend ? "send" : "recv";
  checkOpen(env, operation);
  gpu::DeviceBuffer* buf = deviceArg(env, info[1], "buffer");
  int peer = int(intArg(env, info[2], "peer", 0, size_ - 1));
  Millis timeout = timeoutArg(env, info[3]);
  if (!nccl_) nccl_ = std::make_shared<NcclState>();
  checkDevice(env, *nccl_, *buf, "buffer");
  void* data = buf->data(env);
  const size_t count = buf->length();
  const DType dtype = buf->dtype();
  auto work = newDeviceWork(info, operation, {{info[1], buf}}, timeout);
  Work* raw = work.get();
  auto state = nccl_;
  auto rendezvous = rendezvous_;
  const int rank = rank_, size = size_;
  work->run = [=](std::shared_ptr<Backend>&) {
    gpu::NcclBackend& nb = ncclOn(*state, *rendezvous, rank, size, timeout);
    if (isSend) {
      nb.send(data, count, dtype, peer, timeout);
    } else {
      nb.recv(data, count, dtype, peer, timeout);
    }
    raw->transfer = nb.takeCompletion();
  };
  diagnostics_->guard(*work, {isSend ? CallKind::kSend : CallKind::kRecv, dtype, true, count, peer,
                             -1, true},
                      timeout);
  return queue_->push(env, std::move(work));
}

// deviceGroup(begin, timeoutMs)
Napi::Value Communicator::DeviceGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "group");
  if (!info[0].IsBoolean()) throwTypeError(env, "begin: expected a boolean");
  const bool begin = info[0].As<Napi::Boolean>().Value();
  Millis timeout = timeoutArg(env, info[1]);
  if (!nccl_) nccl_ = std::make_shared<NcclState>();
  auto work = newWork(info, "group");
  Work* raw = work.get();
  work->transferTimeout = timeout;
  work->lane = kDeviceLane;
  auto state = nccl_;
  work->run = [=](std::shared_ptr<Backend>&) {
    if (begin) {
      state->groupOpen = true;
      state->groupStarted = false;
      return;
    }
    const bool started = state->groupStarted;
    state->groupOpen = false;
    state->groupStarted = false;
    if (started && state->backend) {
      state->backend->endGroup(timeout);
      raw->transfer = state->backend->takeCompletion();
    }
  };
  return queue_->push(env, std::move(work));
}

}  // namespace collectives
