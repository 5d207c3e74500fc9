#include "communicator.h"


#include <gloo/rendezvous/file_store.h>

#include "addon_data.h"
#include "args.h"
#include "errors.h"
#include "gloo/gloo_backend.h"
#include "gpu/nccl_backend.h"
#include "mpi/mpi_backend.h"
#include "mpi/mpi_runtime.h"
#include "nccl_state.h"
#include "store/tcp_store.h"

namespace collectives {

Napi::Function Communicator::Define(Napi::Env env) {
  return DefineClass(
      env, "NativeCommunicator",
      {
          InstanceMethod<&Communicator::AllReduce>("allReduce"),
          InstanceMethod<&Communicator::ReduceScatter>("reduceScatter"),
          InstanceMethod<&Communicator::AllGather>("allGather"),
          InstanceMethod<&Communicator::Broadcast>("broadcast"),
          InstanceMethod<&Communicator::Reduce>("reduce"),
          InstanceMethod<&Communicator::Barrier>("barrier"),
          InstanceMethod<&Communicator::MonitoredBarrier>("monitoredBarrier"),
          InstanceMethod<&Communicator::AllToAll>("allToAll"),
          InstanceMethod<&Communicator::AllToAllV>("allToAllV"),
          InstanceMethod<&Communicator::DeviceCollective>("deviceCollective"),
          InstanceMethod<&Communicator::DeviceAllToAllV>("deviceAllToAllV"),
          InstanceMethod<&Communicator::DeviceSendRecv>("deviceSendRecv"),
          InstanceMethod<&Communicator::DeviceGroup>("deviceGroup"),
          InstanceMethod<&Communicator::DeviceQuantized>("deviceQuantized"),
          InstanceMethod<&Communicator::AllToAllQuantized>("allToAllQuantized"),
          InstanceMethod<&Communicator::ReduceScatterQuantized>("reduceScatterQuantized"),
          InstanceMethod<&Communicator::AllGatherQuantized>("allGatherQuantized"),
          InstanceMethod<&Communicator::AllReduceQuantized>("allReduceQuantized"),
          InstanceMethod<&Communicator::Send>("send"),
          InstanceMethod<&Communicator::Recv>("recv"),
          InstanceMethod<&Communicator::Split>("split"),
          InstanceMethod<&Communicator::Close>("close"),
          InstanceMethod<&Communicator::Abort>("abort"),
          InstanceMethod<&Communicator::Algorithm>("algorithm"),
          InstanceMethod<&Communicator::InlineCalls>("inlineCalls"),
          InstanceAccessor<&Communicator::GetRank>("rank"),
          InstanceAccessor<&Communicator::GetSize>("size"),
          InstanceAccessor<&Communicator::GetPending>("pending"),
          InstanceAccessor<&Communicator::GetClosed>("closed"),
          InstanceAccessor<&Communicator::GetEngine>("engine"),
      });
}

namespace {

// Passed to the constructor so that only native code can create instances.
struct Birth {
  std::shared_ptr<WorkQueue> queue;
  int rank;
  int size;
  GlooTuning tuning;
  std::shared_ptr<Diagnostics> diagnostics;
  std::shared_ptr<Rendezvous> rendezvous;
};

std::string optString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return "";
  return stringArg(o.Env(), v, key);
}

// Runs `fn` on `data`, or on a private copy of it when the operation's output
// overlaps the input and would overwrite it before it has been sent.
template <typename F>
void withStableInput(bool copy, const void* data, size_t bytes, F&& fn) {
  if (!copy) {
    fn(data);
    return;
  }
  const char* first = static_cast<const char*>(data);
  std::vector<char> staged(first, first + bytes);
  fn(staged.data());
}

}  // namespace

static GlooTuning tuningArg(Napi::Env env, const Napi::Object& o) {
  GlooTuning t;
  static const size_t limit = syncMessageLimit();
  t.syncMessageLimit = limit;
  const std::string mode = optString(o, "glooMode");
  // "sync" is an alias of "auto", kept so that older scripts keep working.
  if (mode == "async") {
    t.mode = GlooTuning::Mode::kAsync;
  } else if (!mode.empty() && mode != "auto" && mode != "sync") {
    throwRangeError(env, "glooMode: expected 'auto', 'async' or 'sync', got '" + mode + "'");
  }
  const std::string algo = optString(o, "allReduceAlgorithm");
  if (algo == "ring") {
    t.allReduce = GlooTuning::AllReduce::kRing;
  } else if (algo == "halving-doubling") {
    t.allReduce = GlooTuning::AllReduce::kHalvingDoubling;
  } else if (!algo.empty() && algo != "auto") {
    throwRangeError(env, "allReduceAlgorithm: expected 'auto', 'ring' or 'halving-doubling', got '" +
                             algo + "'");
  }
  Napi::Value busy = o.Get("busyPoll");
  if (!busy.IsUndefined()) {
    if (!busy.IsBoolean()) throwTypeError(env, "busyPoll: expected a boolean");
    t.busyPoll = busy.As<Napi::Boolean>().Value();
  }
  Napi::Value inlineBytes = o.Get("inlineBytes");
  if (!inlineBytes.IsUndefined()) {
    t.inlineBytes = size_t(intArg(env, inlineBytes, "inlineBytes", 0, int64_t(1) << 53));
  }
  Napi::Value alone = o.Get("inlineAlone");
  if (!alone.IsUndefined()) {
    if (!alone.IsBoolean()) throwTypeError(env, "inlineAlone: expected a boolean");
    t.inlineAlone = alone.As<Napi::Boolean>().Value();
  }
  return t;
}

Napi::Object Communicator::Wrap(Napi::Env env, std::shared_ptr<WorkQueue> queue, int rank,
                                int size, const GlooTuning& tuning,
                                std::shared_ptr<Diagnostics> diagnostics,
                                std::shared_ptr<Rendezvous> rendezvous) {
  AddonData* data = env.GetInstanceData<AddonData>();
  data->track(queue);
  Birth birth{std::move(queue), rank, size, tuning, std::move(diagnostics), std::move(rendezvous)};
  return data->communicatorConstructor.New({Napi::External<Birth>::New(env, &birth)});
}

Communicator::Communicator(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<Communicator>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwTypeError(info.Env(), "Communicator: create communicators with init()");
  }
  Birth* birth = info[0].As<Napi::External<Birth>>().Data();
  queue_ = birth->queue;
  rank_ = birth->rank;
  size_ = birth->size;
  tuning_ = birth->tuning;
  diagnostics_ = birth->diagnostics;
  rendezvous_ = birth->rendezvous;
  if (size_ > 1) {
    groups_ = info.Env().GetInstanceData<AddonData>()->groups;
    ++*groups_;
    counted_ = true;
  }
}

Communicator::~Communicator() {
  uncount();
  // Pending work pins this object, so a collected communicator is idle.
  if (queue_ && !queue_->closed()) queue_->close();
}

void Communicator::uncount() {
  if (!counted_) return;
  counted_ = false;
  --*groups_;
}

Napi::Value Communicator::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throwTypeError(env, "connect: expected an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  GlooConnectOptions options;
  options.rank = int(intArg(env, o.Get("rank"), "rank", 0, 1 << 20));
  options.size = int(intArg(env, o.Get("size"), "size", 1, 1 << 20));
  if (options.rank >= options.size) {
    throwRangeError(env, "rank: expected an integer below size (" +
                             std::to_string(options.size) + "), got " +
                             std::to_string(options.rank));
  }
  options.timeout = timeoutArg(env, o.Get("timeoutMs"));
  options.tuning = tuningArg(env, o);
  options.prefix = optString(o, "prefix");
  options.hostname = optString(o, "hostname");
  options.iface = optString(o, "iface");
  if (options.hostname.empty() && options.iface.empty()) options.hostname = "127.0.0.1";
  const std::string storePath = optString(o, "storePath");
  const std::string storeHost = optString(o, "storeHost");
  const std::string token = optString(o, "token");
  int storePort = 0;
  if (storePath.empty()) {
    storePort = int(intArg(env, o.Get("storePort"), "storePort", 1, 65535));
    if (storeHost.empty()) throwTypeError(env, "storeHost: expected a host name or address");
  }

  // MPI starts here, on the JS thread (which MPI then calls its main thread).
  const bool useMpi = optString(o, "engine") == "mpi";
  if (useMpi) {
    try {
      mpi::MpiRuntime::get().initialize();
    } catch (const CollectiveFailure& e) {
      throwCoded(env, e.code().c_str(), std::string("init: ") + e.what());
    }
  }

  const bool detail = optString(o, "debug") == "detail";
  auto diagnostics =
      std::make_shared<Diagnostics>(options.rank, options.size, detail, options.prefix, nullptr);
  auto rendezvous = std::make_shared<Rendezvous>();
  rendezvous->prefix = options.prefix;
  auto queue = WorkQueue::create(env, nullptr);
  Napi::Object self =
      Wrap(env, queue, options.rank, options.size, options.tuning, diagnostics, rendezvous);
  if (useMpi) Unwrap(self)->engine_ = "mpi";
  auto work = std::make_unique<Work>(env, "init");
  // init() keeps the process alive while it waits (its timer), so that a rendezvous it gives
  // up does not hold the process until the rendezvous' own timeout.
  work->holdsProcess = !o.Get("callerHoldsProcess").ToBoolean();
  work->run = [options, storePath, storeHost, storePort, token, diagnostics, rendezvous, useMpi](
                  std::shared_ptr<Backend>& backend) mutable {
    if (storePath.empty()) {
      options.store = std::make_shared<TcpStore>(storeHost, storePort, token, options.timeout);
    } else {
      translateGlooErrors("init", [&] {
        options.store = std::make_shared<gloo::rendezvous::FileStore>(storePath);
      });
    }
    if (useMpi) {
      backend = mpi::MpiBackend::connect(options.rank, options.size, options.timeout);
    } else {
      backend = GlooBackend::connect(options);
    }
    rendezvous->store = options.store;
    diagnostics->setStore(options.store);
    if (useMpi) {
      diagnostics->learnRankNames();
    } else {
      diagnostics->learnPeers(options.size > 1 && options.tuning.mode != GlooTuning::Mode::kAsync);
    }
  };
  // Holding the new communicator here also keeps it alive until init settles.
  auto shared = std::make_shared<Napi::ObjectReference>(Napi::Persistent(self));
  work->result = [shared](Napi::Env) -> Napi::Value { return shared->Value(); };
  return queue->push(env, std::move(work));
}

void Communicator::checkOpen(Napi::Env env, const char* operation) {
  if (!queue_ || queue_->closed()) {
    Napi::Error e = Napi::Error::New(env, std::string(operation) +
                                              ": the communicator was destroyed");
    e.Set("code", Napi::String::New(env, codes::kDestroyed));
    throw e;
  }
}

std::unique_ptr<Work> Communicator::newWork(const Napi::CallbackInfo& info,
                                            const char* operation,
                                            std::initializer_list<Napi::Value> buffers,
                                            bool pinned) {
  auto work = std::make_unique<Work>(info.Env(), operation);
  if (!pinned) return work;
  work->pin(info.This());
  for (const Napi::Value& b : buffers) work->pin(b);
  return work;
}

bool Communicator::inlineNow(CallKind kind, size_t bytes, size_t count, Millis timeout) {
  if (tuning_.inlineBytes == 0 || bytes > tuning_.inlineBytes) return false;
  if (tuning_.inlineAlone && counted_ && *groups_ != 1) return false;
  if (!queue_->idle()) return false;
  // Other engines hand every call to the queue thread.
  auto* gloo = dynamic_cast<GlooBackend*>(queue_->idleBackend());
  return gloo != nullptr && gloo->runsOnCaller(kind, bytes, count, timeout);
}

Napi::Value Communicator::issue(Napi::Env env, std::unique_ptr<Work> work, CallKind kind,
                                bool inlined) {
  if (!inlined) return queue_->push(env, std::move(work));
  inlined_[size_t(kind)]++;
  return queue_->runInline(env, std::move(work));
}

Napi::Value Communicator::InlineCalls(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const CallKindNames& n : kCallKindNames) {
    const uint64_t count = inlined_[size_t(n.kind)];
    if (count > 0) out.Set(n.method, Napi::Number::New(env, double(count)));
  }
  return out;
}

void Communicator::checkLength(Napi::Env env, const char* name, size_t got, size_t expected,
                               const char* what) {
  if (got != expected) {
    throwRangeError(env, std::string(name) + ": expected " + std::to_string(expected) +
                             " elements (" + what + "), got " + std::to_string(got));
  }
}

int Communicator::checkRoot(Napi::Env env, const Napi::Value& v, const char* name) {
  return int(intArg(env, v, name, 0, size_ - 1));
}

// allReduce(input, output, dtype, op, timeoutMs)
Napi::Value Communicator::AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "allReduce");
  DType dtype = dtypeArg(env, info[2]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  ArrayView out = arrayArg(env, info[1], "output", dtype);
  RedOp op = redOpArg(env, info[3], dtype);
  Millis timeout = timeoutArg(env, info[4]);
  checkLength(env, "output", out.length, in.length, "the input's length");
  if (overlaps(in, out) && in.data != out.data) {
    throwRangeError(env, "output: overlaps the input without being the same memory");
  }
  size_t count = in.length;
  const bool inlined = inlineNow(CallKind::kAllReduce, in.bytes, count, timeout);
  auto work = newWork(info, "allReduce", {in.value, out.value}, !inlined);
  void* inData = in.data;
  void* outData = out.data;
  work->run = [=](std::shared_ptr<Backend>& b) {
    b->allReduce(inData, outData, count, dtype, op, timeout);
  };
  diagnostics_->guard(*work, {CallKind::kAllReduce, dtype, true, count, -1, int32_t(op)}, timeout);
  return issue(env, std::move(work), CallKind::kAllReduce, inlined);
}

// reduceScatter(input, output, dtype, op, timeoutMs)
Napi::Value Communicator::ReduceScatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "reduceScatter");
  DType dtype = dtypeArg(env, info[2]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  ArrayView out = arrayArg(env, info[1], "output", dtype);
  RedOp op = redOpArg(env, info[3], dtype);
  Millis timeout = timeoutArg(env, info[4]);
  checkLength(env, "input", in.length, out.length * size_t(size_),
              "output length x world size");
  const bool inlined = inlineNow(CallKind::kReduceScatter, in.bytes, in.length, timeout);
  auto work = newWork(info, "reduceScatter", {in.value, out.value}, !inlined);
  size_t count = out.length;
  void* inData = in.data;
  void* outData = out.data;
  work->run = [=](std::shared_ptr<Backend>& b) {
    b->reduceScatter(inData, outData, count, dtype, op, timeout);
  };
  diagnostics_->guard(*work, {CallKind::kReduceScatter, dtype, true, count, -1, int32_t(op)},
                      timeout);
  return issue(env, std::move(work), CallKind::kReduceScatter, inlined);
}

// allGather(input, output, dtype, timeoutMs)
Napi::Value Communicator::AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "allGather");
  DType dtype = dtypeArg(env, info[2]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  ArrayView out = arrayArg(env, info[1], "output", dtype);
  Millis timeout = timeoutArg(env, info[3]);
  checkLength(env, "output", out.length, in.length * size_t(size_),
              "input length x world size");
  const bool inlined = inlineNow(CallKind::kAllGather, out.bytes, in.bytes, timeout);
  auto work = newWork(info, "allGather", {in.value, out.value}, !inlined);
  size_t count = in.length;
  size_t chunkBytes = in.bytes;
  void* inData = in.data;
  void* outData = out.data;
  int rank = rank_;
  // An input that overlaps the output anywhere but its own slot would be
  // overwritten while it is still being sent: send a copy instead.
  bool copyInput = overlaps(in, out) &&
                   inData != static_cast<char*>(outData) + size_t(rank) * chunkBytes;
  work->run = [=](std::shared_ptr<Backend>& b) {
    withStableInput(copyInput, inData, chunkBytes, [&](const void* input) {
      b->allGather(input, outData, count, dtype, timeout);
    });
  };
  diagnostics_->guard(*work, {CallKind::kAllGather, dtype, true, count, -1, -1}, timeout);
  return issue(env, std::move(work), CallKind::kAllGather, inlined);
}

// broadcast(buffer, dtype, root, timeoutMs)
Napi::Value Communicator::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "broadcast");
  DType dtype = dtypeArg(env, info[1]);
  ArrayView buf = arrayArg(env, info[0], "buffer", dtype);
  int root = checkRoot(env, info[2], "root");
  Millis timeout = timeoutArg(env, info[3]);
  const bool inlined = inlineNow(CallKind::kBroadcast, buf.bytes, buf.bytes, timeout);
  auto work = newWork(info, "broadcast", {buf.value}, !inlined);
  void* data = buf.data;
  size_t count = buf.length;
  work->run = [=](std::shared_ptr<Backend>& b) {
    b->broadcast(data, count, dtype, root, timeout);
  };
  diagnostics_->guard(*work, {CallKind::kBroadcast, dtype, true, count, root, -1}, timeout);
  return issue(env, std::move(work), CallKind::kBroadcast, inlined);
}

// reduce(input, output | null, dtype, op, root, timeoutMs)
Napi::Value Communicator::Reduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "reduce");
  DType dtype = dtypeArg(env, info[2]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  RedOp op = redOpArg(env, info[3], dtype);
  int root = checkRoot(env, info[4], "root");
  Millis timeout = timeoutArg(env, info[5]);
  ArrayView out;
  bool haveOut = !(info[1].IsNull() || info[1].IsUndefined());
  if (haveOut) {
    out = arrayArg(env, info[1], "output", dtype);
    checkLength(env, "output", out.length, in.length, "the input's length");
  } else if (rank_ == root) {
    throwTypeError(env, "output: the root needs an output buffer");
  }
  auto work = newWork(info, "reduce", {in.value});
  if (haveOut) work->pin(out.value);
  void* inData = in.data;
  void* outData = haveOut ? out.data : nullptr;
  size_t count = in.length;
  work->run = [=](std::shared_ptr<Backend>& b) {
    b->reduce(inData, outData, count, dtype, op, root, timeout);
  };
  diagnostics_->guard(*work, {CallKind::kReduce, dtype, true, count, root, int32_t(op)}, timeout);
  return queue_->push(env, std::move(work));
}

// barrier(timeoutMs)
Napi::Value Communicator::Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "barrier");
  Millis timeout = timeoutArg(env, info[0]);
  const bool inlined = inlineNow(CallKind::kBarrier, 0, 0, timeout);
  auto work = newWork(info, "barrier", {}, !inlined);
  work->run = [=](std::shared_ptr<Backend>& b) { b->barrier(timeout); };
  diagnostics_->guard(*work, {CallKind::kBarrier}, timeout);
  return issue(env, std::move(work), CallKind::kBarrier, inlined);
}

// allToAll(input, output, dtype, timeoutMs)
Napi::Value Communicator::AllToAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "allToAll");
  DType dtype = dtypeArg(env, info[2]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  ArrayView out = arrayArg(env, info[1], "output", dtype);
  Millis timeout = timeoutArg(env, info[3]);
  checkLength(env, "output", out.length, in.length, "the input's length");
  if (in.length % size_t(size_) != 0) {
    throwRangeError(env, "input: expected a length divisible by the world size (" +
                             std::to_string(size_) + "), got " + std::to_string(in.length));
  }
  auto work = newWork(info, "allToAll", {in.value, out.value});
  void* inData = in.data;
  void* outData = out.data;
  size_t countPerRank = in.length / size_t(size_);
  size_t bytes = in.bytes;
  bool copyInput = overlaps(in, out);
  work->run = [=](std::shared_ptr<Backend>& b) {
    withStableInput(copyInput, inData, bytes, [&](const void* input) {
      b->allToAll(input, outData, countPerRank, dtype, timeout);
    });
  };
  diagnostics_->guard(*work, {CallKind::kAllToAll, dtype, true, countPerRank, -1, -1}, timeout);
  return queue_->push(env, std::move(work));
}

// allToAllV(input, inputCounts, output, outputCounts, dtype, timeoutMs)
Napi::Value Communicator::AllToAllV(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "allToAllV");
  DType dtype = dtypeArg(env, info[4]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  std::vector<int64_t> inCounts = countsArg(env, info[1], "inputSplits", size_);
  ArrayView out = arrayArg(env, info[2], "output", dtype);
  std::vector<int64_t> outCounts = countsArg(env, info[3], "outputSplits", size_);
  Millis timeout = timeoutArg(env, info[5]);
  int64_t inTotal = 0, outTotal = 0;
  for (int64_t c : inCounts) inTotal += c;
  for (int64_t c : outCounts) outTotal += c;
  if (inTotal != int64_t(in.length)) {
    throwRangeError(env, "inputSplits: expected counts summing to the input's length (" +
                             std::to_string(in.length) + "), got " + std::to_string(inTotal));
  }
  if (outTotal != int64_t(out.length)) {
    throwRangeError(env, "outputSplits: expected counts summing to the output's length (" +
                             std::to_string(out.length) + "), got " +
                             std::to_string(outTotal));
  }
  auto work = newWork(info, "allToAllV", {in.value, out.value});
  void* inData = in.data;
  void* outData = out.data;
  size_t bytes = in.bytes;
  bool copyInput = overlaps(in, out);
  work->run = [=](std::shared_ptr<Backend>& b) {
    withStableInput(copyInput, inData, bytes, [&](const void* input) {
      b->allToAllV(input, inCounts, outData, outCounts, dtype, timeout);
    });
  };
  diagnostics_->guard(*work, {CallKind::kAllToAllV, dtype, true, 0, -1, -1}, timeout);
  return queue_->push(env, std::move(work));
}

// send(buffer, dtype, peer, tag, timeoutMs)
Napi::Value Communicator::Send(const Napi::CallbackInfo& info) {
  return PointToPoint(info, true);
}

// recv(buffer, dtype, peer, tag, timeoutMs)
Napi::Value Communicator::Recv(const Napi::CallbackInfo& info) {
  return PointToPoint(info, false);
}

// The transfer is posted in issue order on the queue thread and awaited on
// the waiter thread, so a send never blocks the receive it is waiting for.
Napi::Value Communicator::PointToPoint(const Napi::CallbackInfo& info, bool isSend) {
  Napi::Env env = info.Env();
  const char* operation = isSend ? "send" : "recv";
  checkOpen(env, operation);
  DType dtype = dtypeArg(env, info[1]);
  ArrayView buf = arrayArg(env, info[0], "buffer", dtype);
  int peer = int(intArg(env, info[2], "peer", 0, size_ - 1));
  if (peer == rank_) throwRangeError(env, "peer: expected another rank, got this rank");
  uint32_t tag = uint32_t(intArg(env, info[3], "tag", 0, 0xffffffffLL));
  Millis timeout = timeoutArg(env, info[4]);
  auto work = newWork(info, operation, {buf.value});
  void* data = buf.data;
  size_t bytes = buf.bytes;
  Work* raw = work.get();
  work->transferTimeout = timeout;
  work->run = [=](std::shared_ptr<Backend>& b) {
    raw->transfer = isSend ? b->postSend(data, bytes, peer, tag)
                           : b->postRecv(data, bytes, peer, tag);
  };
  diagnostics_->guard(*work, {isSend ? CallKind::kSend : CallKind::kRecv, dtype, true,
                             buf.length, peer, -1},
                      timeout);
  return queue_->push(env, std::move(work));
}

// split(newRank, newSize, key, timeoutMs, members?) -> Promise<Communicator>;
// members: the parent ranks of the new communicator, in their new order.
Napi::Value Communicator::Split(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "split");
  int newSize = int(intArg(env, info[1], "size", 1, size_));
  int newRank = int(intArg(env, info[0], "rank", 0, newSize - 1));
  std::string key = stringArg(env, info[2], "key");
  Millis timeout = timeoutArg(env, info[3]);
  auto work = newWork(info, "split");
  auto child = std::make_shared<std::shared_ptr<Backend>>();
  auto childDiagnostics = diagnostics_->child(newRank, newSize, key);
  auto childRendezvous = std::make_shared<Rendezvous>();
  auto rendezvous = rendezvous_;
  GlooTuning tuning = tuning_;
  std::vector<int> members;
  if (info[4].IsArray()) {
    Napi::Array list = info[4].As<Napi::Array>();
    if (list.Length() != uint32_t(newSize)) throwRangeError(env, "members: expected one rank per member");
    for (uint32_t i = 0; i < list.Length(); i++) {
      members.push_back(int(intArg(env, list.Get(i), "members[]", 0, size_ - 1)));
    }
  }
  const std::string engine = engine_;
  work->run = [=](std::shared_ptr<Backend>& b) {
    *child = members.empty() ? b->split(newRank, newSize, key, timeout)
                             : b->splitRanks(members, newRank, key, timeout);
    *childRendezvous = rendezvous->child(key);
    if (engine == "mpi") {
      childDiagnostics->learnRankNames();
    } else {
      childDiagnostics->learnPeers(newSize > 1 && tuning.mode != GlooTuning::Mode::kAsync);
    }
  };
  diagnostics_->guard(*work, {CallKind::kSplit}, timeout);
  work->result = [child, childDiagnostics, childRendezvous, newRank, newSize, tuning,
                  engine](Napi::Env env) -> Napi::Value {
    auto queue = WorkQueue::create(env, *child);
    child->reset();
    Napi::Object made = Communicator::Wrap(env, queue, newRank, newSize, tuning, childDiagnostics,
                                           childRendezvous);
    Unwrap(made)->engine_ = engine;
    return made;
  };
  return queue_->push(env, std::move(work));
}

// algorithm(op, bytes, device) -> string: what runs `op` (nccl-tests' name or
// the method's) on `bytes` bytes of host memory, or of device memory when
// `device` is true.
Napi::Value Communicator::Algorithm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string op = stringArg(env, info[0], "op");
  size_t bytes = size_t(intArg(env, info[1], "bytes", 0, int64_t(1) << 53));
  const bool device = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  CallKind kind;
  if (!callKindFromTestName(op, &kind)) {
    throwRangeError(env, "op: expected an nccl-tests operation name (e.g. 'all_reduce') or a "
                         "method name (e.g. 'allReduce'), got '" + op + "'");
  }
  // Host memory (and every barrier) goes through MPI's own algorithms, which
  // it picks per call.
  if (engine_ == "mpi" && (!device || kind == CallKind::kBarrier)) return Napi::String::New(env, "mpi");
  std::string name = GlooBackend::describe(tuning_, size_, kind, bytes);
  // A barrier stays on Gloo whatever the buffers.
  if (!device || kind == CallKind::kBarrier) return Napi::String::New(env, name);
  const gpu::NcclStatus& ns = gpu::nccl();
  if (!ns.available) {
    Napi::Error e = Napi::Error::New(env, "algorithm: NCCL is not available: " + ns.reason);
    e.Set("code", Napi::String::New(env, codes::kBackendUnavailable));
    throw e;
  }
  if (kind == CallKind::kAllToAll) {
    return Napi::String::New(env, gpu::NcclBackend::allToAllAlgorithm(*ns.api));
  }
  return Napi::String::New(env, "nccl");
}

// close(): stops the idle queue. The TypeScript layer waits for pending work.
Napi::Value Communicator::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (queue_->pending() > 0 && !queue_->closed()) {
    Napi::Error e = Napi::Error::New(env, "close: " + std::to_string(queue_->pending()) +
                                              " operations are still pending");
    e.Set("code", Napi::String::New(env, codes::kInvalidArgument));
    throw e;
  }
  queue_->close();
  uncount();
  // No work is pending, so the queue thread no longer uses the NCCL
  // communicator, unless an abort left it inside a call: then the backend
  // goes with the last reference to this state instead.
  if (nccl_ && !queue_->aborted()) nccl_->backend.reset();
  return env.Undefined();
}

// abort(reason?): fails pending work at once.
Napi::Value Communicator::Abort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string reason = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value()
                                          : "the communicator was aborted";
  queue_->abort(env, reason);
  uncount();
  // As torch's abort() does: in-flight device work stops now instead of at
  // its timeout, and the waiter gives it back.
  if (nccl_) {
    std::shared_ptr<gpu::NcclBackend> backend = std::atomic_load(&nccl_->backend);
    if (backend) backend->abort();
  }
  return env.Undefined();
}

Napi::Value Communicator::GetRank(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rank_);
}
Napi::Value Communicator::GetSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), size_);
}
Napi::Value Communicator::GetPending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(queue_->pending()));
}
Napi::Value Communicator::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), queue_->closed());
}
Napi::Value Communicator::GetEngine(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), engine_);
}

}  // namespace collectives
