#include "gloo_backend.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/common/logging.h>
#include <gloo/reduce.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include "../errors.h"
#include "../reduce_ops.h"

namespace collectives {
namespace {

// Gloo's collectives reserve slot prefixes 0x01-0x08 in the top byte; user
// point-to-point traffic gets a prefix of its own so tags never collide.
constexpr uint64_t kUserSlotPrefix = uint64_t(0xF0) << 56;
// The pipelined reduce-scatter's pieces: prefix, the call's tag, the piece.
constexpr uint64_t kReduceScatterSlotPrefix = uint64_t(0xF1) << 56;
constexpr size_t kReduceScatterPieces = 8;
constexpr size_t kReduceScatterPieceMinBytes = 256 * 1024;

// A zero-length typed array may have no backing store; Gloo still wants a
// pointer for its (empty) unbound buffer.
char gEmpty[8];
inline void* nonNull(const void* p) {
  return p ? const_cast<void*>(p) : static_cast<void*>(gEmpty);
}

std::shared_ptr<gloo::Context> connectContext(
    int rank, int size, gloo::rendezvous::Store& store, const std::string& prefix,
    std::shared_ptr<gloo::transport::Device>& device, Millis timeout) {
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  context->setTimeout(timeout);
  gloo::rendezvous::PrefixStore scoped(prefix, store);
  context->connectFullMesh(scoped, device);
  return context;
}

template <typename T>
void runAllreduce(const std::shared_ptr<gloo::Context>& context, const void* in,
                  void* out, size_t count, ReduceFn fn, uint32_t tag, Millis timeout) {
  gloo::AllreduceOptions opts(context);
  if (in != out) opts.setInput<T>(static_cast<T*>(const_cast<void*>(in)), count);
  opts.setOutput<T>(static_cast<T*>(out), count);
  opts.setReduceFunction(fn);
  opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
  opts.setTag(tag);
  opts.setTimeout(timeout);
  gloo::allreduce(opts);
}

template <typename T>
void runReduce(const std::shared_ptr<gloo::Context>& context, const void* in,
               void* out, size_t count, ReduceFn fn, int root, uint32_t tag,
               Millis timeout) {
  gloo::ReduceOptions opts(context);
  opts.setInput<T>(static_cast<T*>(const_cast<void*>(in)), count);
  opts.setOutput<T>(static_cast<T*>(out), count);
  opts.setReduceFunction(fn);
  opts.setRoot(root);
  opts.setTag(tag);
  opts.setTimeout(timeout);
  gloo::reduce(opts);
}

// Calls F<T> with T the C++ type of a non-half dtype.
#define COLLECTIVES_DISPATCH(dtype, F, ...)                      \
  switch (dtype) {                                               \
    case DType::kFloat32: F<float>(__VA_ARGS__); break;          \
    case DType::kFloat64: F<double>(__VA_ARGS__); break;         \
    case DType::kInt8: F<int8_t>(__VA_ARGS__); break;            \
    case DType::kUint8: F<uint8_t>(__VA_ARGS__); break;          \
    case DType::kInt32: F<int32_t>(__VA_ARGS__); break;          \
    case DType::kInt64: F<int64_t>(__VA_ARGS__); break;          \
    default:                                                     \
      throw CollectiveFailure(codes::kInternal, "unexpected half dtype"); \
  }

class GlooTransfer : public PendingTransfer {
 public:
  GlooTransfer(std::unique_ptr<gloo::transport::UnboundBuffer> buffer, bool isSend,
               int peer)
      : buffer_(std::move(buffer)), isSend_(isSend), peer_(peer) {}

  void wait(Millis timeout) override {
    translateGlooErrors(isSend_ ? "send" : "recv", [&] {
      bool done = isSend_ ? buffer_->waitSend(timeout) : buffer_->waitRecv(timeout);
      if (!done) {
        throw CollectiveFailure(codes::kAborted, std::string(isSend_ ? "send to" : "recv from") +
                                                     " rank " + std::to_string(peer_) +
                                                     " was aborted");
      }
    });
  }

 private:
  std::unique_ptr<gloo::transport::UnboundBuffer> buffer_;
  bool isSend_;
  int peer_;
};

}  // namespace

void translateGlooErrors(const char* operation, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const CollectiveFailure&) {
    throw;
  } catch (const gloo::IoException& e) {
    std::string what = e.what();
    bool timedOut = what.find("imed out") != std::string::npos ||
                    what.find("imeout") != std::string::npos;
    throw CollectiveFailure(timedOut ? codes::kTimeout : codes::kPeerLost,
                            std::string(operation) + ": " + what);
  } catch (const gloo::EnforceNotMet& e) {
    // On the synchronous pairs a message longer than the buffer posted for it
    // fails on this thread: ranks passed different counts.
    std::string what = e.what();
    if (what.find("op.preamble") != std::string::npos) {
      throw CollectiveFailure(codes::kMismatch, std::string(operation) +
                                                    ": a peer sent more than this rank's count "
                                                    "(ranks passed different counts): " + what);
    }
    throw CollectiveFailure(codes::kInternal, std::string(operation) + ": " + what);
  } catch (const std::exception& e) {
    std::string what = e.what();
    bool timedOut = what.find("imed out") != std::string::npos;
    throw CollectiveFailure(timedOut ? codes::kTimeout : codes::kInternal,
                            std::string(operation) + ": " + what);
  }
}

std::shared_ptr<GlooBackend> GlooBackend::connect(const GlooConnectOptions& options) {
  std::shared_ptr<GlooBackend> backend;
  translateGlooErrors("connect", [&] {
    gloo::transport::tcp::attr attr;
    if (!options.iface.empty()) {
      attr.iface = options.iface;
    } else {
      attr.hostname = options.hostname;
    }
    backend = create(options, gloo::transport::tcp::CreateDevice(attr));
  });
  return backend;
}

std::shared_ptr<GlooBackend> GlooBackend::create(
    const GlooConnectOptions& options, std::shared_ptr<gloo::transport::Device> device) {
  auto context = connectContext(options.rank, options.size, *options.store, options.prefix,
                                device, options.timeout);
  std::shared_ptr<gloo::Context> syncContext;
  if (options.size > 1 && options.tuning.mode != GlooTuning::Mode::kAsync) {
    syncContext = connectContext(options.rank, options.size, *options.store,
                                 options.prefix + "/sync", device, options.timeout);
    for (int r = 0; r < options.size; r++) {
      if (r != options.rank) syncContext->getPair(r)->setSync(true, options.tuning.busyPoll);
    }
  }
  return std::shared_ptr<GlooBackend>(
      new GlooBackend(options, std::move(device), std::move(context), std::move(syncContext)));
}

GlooBackend::GlooBackend(GlooConnectOptions options,
                         std::shared_ptr<gloo::transport::Device> device,
                         std::shared_ptr<gloo::Context> context,
                         std::shared_ptr<gloo::Context> syncContext)
    : options_(std::move(options)),
      device_(std::move(device)),
      context_(std::move(context)),
      syncContext_(std::move(syncContext)),
      rank_(context_->rank),
      size_(context_->size) {
  if (syncContext_) sync_ = std::make_unique<SyncCollectives>(syncContext_);
}

GlooAlgo GlooBackend::pickFor(const GlooTuning& tuning, int size, bool haveSync, GlooOp op,
                              size_t bytes, size_t count, bool defaultTimeout) {
  GlooAlgo algo = chooseAlgorithm(op, bytes, size, tuning);
  if (!isSync(algo)) return algo;
  if (haveSync && count <= size_t(INT_MAX) && defaultTimeout) return algo;
  switch (op) {
    case GlooOp::kAllReduce: return GlooAlgo::kAsyncRing;
    case GlooOp::kReduceScatter: return GlooAlgo::kAsyncAllToAllReduce;
    default: return GlooAlgo::kAsync;
  }
}

GlooAlgo GlooBackend::pick(GlooOp op, size_t bytes, size_t count, Millis timeout) const {
  return pickFor(options_.tuning, size_, sync_ != nullptr, op, bytes, count,
                 timeout == options_.timeout);
}

namespace {

// The algorithm policy's operation for a call kind; false for kinds it does not choose for.
bool glooOpOf(CallKind kind, GlooOp* op) {
  switch (kind) {
    case CallKind::kAllReduce: *op = GlooOp::kAllReduce; return true;
    case CallKind::kReduceScatter: *op = GlooOp::kReduceScatter; return true;
    case CallKind::kAllGather: *op = GlooOp::kAllGather; return true;
    case CallKind::kBroadcast: *op = GlooOp::kBroadcast; return true;
    case CallKind::kBarrier: *op = GlooOp::kBarrier; return true;
    case CallKind::kReduce: *op = GlooOp::kReduce; return true;
    case CallKind::kAllToAll: *op = GlooOp::kAllToAll; return true;
    default: return false;
  }
}

}  // namespace

bool GlooBackend::runsOnCaller(CallKind kind, size_t bytes, size_t count, Millis timeout) const {
  // Reduce and the all-to-alls run on the asynchronous pairs, which only the queue may drive.
  if (!sync_ || kind == CallKind::kReduce || kind == CallKind::kAllToAll) return false;
  GlooOp op;
  if (!glooOpOf(kind, &op)) return false;
  return isSync(pick(op, bytes, count, timeout));
}

std::string GlooBackend::describe(const GlooTuning& tuning, int size, CallKind kind,
                                  size_t bytes) {
  GlooOp op;
  if (!glooOpOf(kind, &op)) return "";
  if (size == 1) return "local";
  const bool haveSync = tuning.mode != GlooTuning::Mode::kAsync;
  GlooAlgo algo = pickFor(tuning, size, haveSync, op, bytes, bytes, true);
  std::string name = algorithmName(algo);
  if (isSync(algo) && tuning.busyPoll) name += " busy-poll";
  if (op == GlooOp::kAllReduce && isSync(algo)) {
    // Benchmarks count float32 elements.
    const size_t chunk = allReduceChunkBytes(algo, size, tuning.syncMessageLimit, 4);
    if (bytes > chunk) name += ", " + std::to_string(chunk) + "-byte chunks";
  }
  return name;
}

void GlooBackend::allReduceSameType(const void* in, void* out, size_t count,
                                    DType dtype, RedOp op, Millis timeout) {
  GlooAlgo algo = pick(GlooOp::kAllReduce, count * dtypeSize(dtype), count, timeout);
  if (isSync(algo)) {
    sync_->allReduce(algo, in, out, count, dtype, op,
                     allReduceChunkBytes(algo, size_, options_.tuning.syncMessageLimit,
                                         dtypeSize(dtype)));
  } else {
    ReduceFn fn = reduceFunction(dtype, op);
    uint32_t tag = nextTag();
    COLLECTIVES_DISPATCH(dtype, runAllreduce, context_, in, out, count, fn, tag, timeout);
  }
  if (op == RedOp::kAvg) divideInPlace(dtype, out, count, size_);
}

void GlooBackend::allReduce(const void* in, void* out, size_t count, DType dtype,
                            RedOp op, Millis timeout) {
  if (count == 0) return;
  translateGlooErrors("allReduce", [&] {
    if (!isHalf(dtype)) {
      allReduceSameType(in, out, count, dtype, op, timeout);
      return;
    }
    std::vector<float> wide(count);
    widenHalf(dtype, static_cast<const uint16_t*>(in), wide.data(), count);
    allReduceSameType(wide.data(), wide.data(), count, DType::kFloat32, op, timeout);
    narrowHalf(dtype, wide.data(), static_cast<uint16_t*>(out), count);
  });
}

void GlooBackend::reduceScatterSync(const void* in, void* out, size_t countPerRank,
                                    DType dtype, RedOp op) {
  if (isHalf(dtype)) {
    std::vector<float> wide(countPerRank * size_), result(countPerRank);
    widenHalf(dtype, static_cast<const uint16_t*>(in), wide.data(), wide.size());
    sync_->reduceScatter(wide.data(), result.data(), countPerRank, DType::kFloat32, op);
    if (op == RedOp::kAvg) divideInPlace(DType::kFloat32, result.data(), countPerRank, size_);
    narrowHalf(dtype, result.data(), static_cast<uint16_t*>(out), countPerRank);
    return;
  }
  sync_->reduceScatter(in, out, countPerRank, dtype, op);
  if (op == RedOp::kAvg) divideInPlace(dtype, out, countPerRank, size_);
}

void GlooBackend::reduceScatterPipelined(const void* in, void* out, size_t countPerRank,
                                         DType dtype, RedOp op, Millis timeout) {
  const size_t esize = dtypeSize(dtype);
  const size_t chunkBytes = countPerRank * esize;
  // Pieces of each rank's block travel separately, so that the reduction of
  // one piece overlaps the transfer of the next (Gloo's loop thread receives
  // while this thread reduces). Each piece is reduced in rank order.
  size_t pieceBytes = std::max(kReduceScatterPieceMinBytes, chunkBytes / kReduceScatterPieces);
  pieceBytes -= pieceBytes % esize;
  const size_t pieces = (chunkBytes + pieceBytes - 1) / pieceBytes;
  const uint64_t base = kReduceScatterSlotPrefix | (uint64_t(nextTag()) << 16);
  const char* src = static_cast<const char*>(in);
  char* gathered = gathered_.data();
  auto sendBuffer = context_->createUnboundBuffer(const_cast<char*>(src), chunkBytes * size_);
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> recvBuffers;
  for (size_t j = 0; j < pieces; j++) {
    recvBuffers.push_back(context_->createUnboundBuffer(gathered, chunkBytes * size_));
  }
  for (size_t j = 0; j < pieces; j++) {
    const size_t length = std::min(pieceBytes, chunkBytes - j * pieceBytes);
    for (int r = 0; r < size_; r++) {
      if (r == rank_) continue;
      // Block r of this rank's input goes to rank r; rank r's block for this
      // rank lands in slot r of `gathered`.
      sendBuffer->send(r, base | j, size_t(r) * chunkBytes + j * pieceBytes, length);
      recvBuffers[j]->recv(r, base | j, size_t(r) * chunkBytes + j * pieceBytes, length);
    }
  }
  ReduceFn fn = reduceFunction(dtype, op);
  // This rank's own block joins the others in `gathered`, so the reduction
  // reads every block from there.
  std::memcpy(gathered + size_t(rank_) * chunkBytes, src + size_t(rank_) * chunkBytes, chunkBytes);
  auto block = [&](int r, size_t offset) -> const char* {
    return gathered + size_t(r) * chunkBytes + offset;
  };
  // An output inside the input would overwrite data still being sent or
  // still to be reduced: it is staged in the slot after the last block and
  // copied out once the sends are done.
  char* const target = static_cast<char*>(out);
  const bool overlapsInput = target < src + chunkBytes * size_ && src < target + chunkBytes;
  char* dst = overlapsInput ? gathered + size_t(size_) * chunkBytes : target;
  for (size_t j = 0; j < pieces; j++) {
    for (int k = 1; k < size_; k++) {
      if (!recvBuffers[j]->waitRecv(timeout)) {
        throw CollectiveFailure(codes::kAborted, "reduceScatter was aborted");
      }
    }
    const size_t offset = j * pieceBytes;
    const size_t count = std::min(pieceBytes, chunkBytes - offset) / esize;
    fn(dst + offset, block(0, offset), block(1, offset), count);
    for (int r = 2; r < size_; r++) reduceInto(dtype, op, dst + offset, block(r, offset), count);
  }
  for (size_t k = 0; k < pieces * size_t(size_ - 1); k++) {
    if (!sendBuffer->waitSend(timeout)) {
      throw CollectiveFailure(codes::kAborted, "reduceScatter was aborted");
    }
  }
  if (dst != target) std::memcpy(target, dst, chunkBytes);
}

void GlooBackend::reduceScatter(const void* in, void* out, size_t countPerRank,
                                DType dtype, RedOp op, Millis timeout) {
  if (countPerRank == 0) return;
  translateGlooErrors("reduceScatter", [&] {
    const size_t esize = dtypeSize(dtype);
    const size_t chunkBytes = countPerRank * esize;
    if (size_ > 1 && isSync(pick(GlooOp::kReduceScatter, chunkBytes * size_,
                                 countPerRank * size_, timeout))) {
      reduceScatterSync(in, out, countPerRank, dtype, op);
      return;
    }
    // Kept between calls: fresh pages for a large buffer cost a fault each.
    // One slot per rank, and one more where the pipelined path may stage.
    if (gathered_.size() < chunkBytes * (size_ + 1)) gathered_.resize(chunkBytes * (size_ + 1));
    std::vector<char>& gathered = gathered_;
    if (size_ == 1) {
      std::memmove(out, in, chunkBytes);
      return;
    }
    if (!isHalf(dtype)) {
      reduceScatterPipelined(in, out, countPerRank, dtype, op, timeout);
      if (op == RedOp::kAvg) divideInPlace(dtype, out, countPerRank, size_);
      return;
    }
    // Half types: all-to-all, then widen and reduce in float32, rounding once.
    allToAll(in, gathered.data(), countPerRank, dtype, timeout);
    std::vector<float> acc(countPerRank), part(countPerRank);
    const uint16_t* g = reinterpret_cast<const uint16_t*>(gathered.data());
    widenHalf(dtype, g, acc.data(), countPerRank);
    for (int r = 1; r < size_; r++) {
      widenHalf(dtype, g + size_t(r) * countPerRank, part.data(), countPerRank);
      reduceInto(DType::kFloat32, op, acc.data(), part.data(), countPerRank);
    }
    if (op == RedOp::kAvg) divideInPlace(DType::kFloat32, acc.data(), countPerRank, size_);
    narrowHalf(dtype, acc.data(), static_cast<uint16_t*>(out), countPerRank);
  });
}

void GlooBackend::allGather(const void* in, void* out, size_t countPerRank,
                            DType dtype, Millis timeout) {
  if (countPerRank == 0) return;
  translateGlooErrors("allGather", [&] {
    const size_t chunkBytes = countPerRank * dtypeSize(dtype);
    char* outBytes = static_cast<char*>(out);
    if (isSync(pick(GlooOp::kAllGather, chunkBytes * size_, chunkBytes, timeout))) {
      sync_->allGather(in, out, chunkBytes);
      return;
    }
    gloo::AllgatherOptions opts(context_);
    if (in != outBytes + size_t(rank_) * chunkBytes) {
      opts.setInput<char>(static_cast<char*>(const_cast<void*>(in)), chunkBytes);
    }
    opts.setOutput<char>(outBytes, chunkBytes * size_);
    opts.setTag(nextTag());
    opts.setTimeout(timeout);
    gloo::allgather(opts);
  });
}

void GlooBackend::broadcast(void* data, size_t count, DType dtype, int root,
                            Millis timeout) {
  if (count == 0) return;
  translateGlooErrors("broadcast", [&] {
    const size_t bytes = count * dtypeSize(dtype);
    if (isSync(pick(GlooOp::kBroadcast, bytes, bytes, timeout))) {
      sync_->broadcast(data, bytes, root);
      return;
    }
    gloo::BroadcastOptions opts(context_);
    opts.setOutput<char>(static_cast<char*>(data), count * dtypeSize(dtype));
    opts.setRoot(root);
    opts.setTag(nextTag());
    opts.setTimeout(timeout);
    gloo::broadcast(opts);
  });
}

void GlooBackend::reduce(const void* in, void* out, size_t count, DType dtype,
                         RedOp op, int root, Millis timeout) {
  if (count == 0) return;
  translateGlooErrors("reduce", [&] {
    // Gloo's reduce uses the output as scratch on every rank, and its input
    // must not alias it, so both get their own storage here.
    const DType wire = isHalf(dtype) ? DType::kFloat32 : dtype;
    const size_t bytes = count * dtypeSize(wire);
    std::vector<char> input(bytes), result(bytes);
    if (isHalf(dtype)) {
      widenHalf(dtype, static_cast<const uint16_t*>(in),
                reinterpret_cast<float*>(input.data()), count);
    } else {
      std::memcpy(input.data(), in, bytes);
    }
    ReduceFn fn = reduceFunction(wire, op);
    uint32_t tag = nextTag();
    COLLECTIVES_DISPATCH(wire, runReduce, context_, input.data(), result.data(), count,
                         fn, root, tag, timeout);
    if (rank_ != root) return;
    if (op == RedOp::kAvg) divideInPlace(wire, result.data(), count, size_);
    if (isHalf(dtype)) {
      narrowHalf(dtype, reinterpret_cast<const float*>(result.data()),
                 static_cast<uint16_t*>(out), count);
    } else {
      std::memcpy(out, result.data(), bytes);
    }
  });
}

void GlooBackend::barrier(Millis timeout) {
  translateGlooErrors("barrier", [&] {
    if (isSync(pick(GlooOp::kBarrier, 0, 0, timeout))) {
      sync_->barrier();
      return;
    }
    gloo::BarrierOptions opts(context_);
    opts.setTag(nextTag());
    opts.setTimeout(timeout);
    gloo::barrier(opts);
  });
}

namespace {

std::string listBytes(const std::vector<int64_t>& v, size_t first, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; i++) out += (i ? "," : "") + std::to_string(v[first + i]);
  return out;
}

}  // namespace

// Gloo's TCP loop thread aborts the process (an enforce on its own thread)
// when a message is longer than the buffer posted for it, so the all-to-alls
// first gather every rank's sizes (a few bytes, the same length everywhere)
// and every rank rejects alike when they disagree.
void GlooBackend::checkAllToAllSizes(const char* operation, const std::vector<int64_t>& inBytes,
                                     const std::vector<int64_t>& outBytes, Millis timeout) {
  if (size_ == 1) return;
  const size_t n = size_t(size_);
  std::vector<int64_t> mine(2 * n), all(2 * n * n);
  std::copy(inBytes.begin(), inBytes.end(), mine.begin());
  std::copy(outBytes.begin(), outBytes.end(), mine.begin() + long(n));
  allGather(mine.data(), all.data(), mine.size(), DType::kInt64, timeout);
  std::string differ;
  for (size_t r = 0; r < n && differ.empty(); r++) {
    for (size_t k = 0; k < n; k++) {
      // What rank r sends to rank k must be what rank k expects from rank r.
      if (all[r * 2 * n + k] != all[k * 2 * n + n + r]) {
        differ = "rank " + std::to_string(r) + " sends " + std::to_string(all[r * 2 * n + k]) +
                 " bytes to rank " + std::to_string(k) + ", which expects " +
                 std::to_string(all[k * 2 * n + n + r]);
        break;
      }
    }
  }
  if (differ.empty()) return;
  std::string sends;
  for (size_t r = 0; r < n; r++) {
    sends += (r ? "; rank " : "rank ") + std::to_string(r) + " sends [" + listBytes(all, r * 2 * n, n) + "]";
  }
  throw CollectiveFailure(codes::kMismatch, std::string(operation) +
                                                ": ranks passed sizes that do not match: " + differ +
                                                " (bytes per rank: " + sends + ")");
}

void GlooBackend::allToAll(const void* in, void* out, size_t countPerRank,
                           DType dtype, Millis timeout) {
  translateGlooErrors("allToAll", [&] {
    const int64_t each = int64_t(countPerRank * dtypeSize(dtype));
    checkAllToAllSizes("allToAll", std::vector<int64_t>(size_t(size_), each),
                       std::vector<int64_t>(size_t(size_), each), timeout);
    if (countPerRank == 0) return;
    const size_t bytes = countPerRank * dtypeSize(dtype) * size_;
    gloo::AlltoallOptions opts(context_);
    opts.setInput<char>(static_cast<char*>(const_cast<void*>(in)), bytes);
    opts.setOutput<char>(static_cast<char*>(out), bytes);
    opts.setTag(nextTag());
    opts.setTimeout(timeout);
    gloo::alltoall(opts);
  });
}

void GlooBackend::allToAllV(const void* in, const std::vector<int64_t>& inCounts,
                            void* out, const std::vector<int64_t>& outCounts,
                            DType dtype, Millis timeout) {
  translateGlooErrors("allToAllV", [&] {
    const int64_t esize = int64_t(dtypeSize(dtype));
    std::vector<int64_t> inBytes(inCounts.size()), outBytes(outCounts.size());
    for (size_t r = 0; r < inCounts.size(); r++) inBytes[r] = inCounts[r] * esize;
    for (size_t r = 0; r < outCounts.size(); r++) outBytes[r] = outCounts[r] * esize;
    checkAllToAllSizes("allToAllV", inBytes, outBytes, timeout);
    gloo::AlltoallvOptions opts(context_);
    opts.setInput<char>(static_cast<char*>(nonNull(in)), inBytes);
    opts.setOutput<char>(static_cast<char*>(nonNull(out)), outBytes);
    opts.setTag(nextTag());
    opts.setTimeout(timeout);
    gloo::alltoallv(opts);
  });
}

std::unique_ptr<PendingTransfer> GlooBackend::postSend(const void* data, size_t bytes,
                                                       int peer, uint32_t tag) {
  std::unique_ptr<PendingTransfer> pending;
  translateGlooErrors("send", [&] {
    auto buffer = context_->createUnboundBuffer(nonNull(data), bytes);
    buffer->send(peer, kUserSlotPrefix | tag);
    pending.reset(new GlooTransfer(std::move(buffer), true, peer));
  });
  return pending;
}

std::unique_ptr<PendingTransfer> GlooBackend::postRecv(void* data, size_t bytes,
                                                       int peer, uint32_t tag) {
  std::unique_ptr<PendingTransfer> pending;
  translateGlooErrors("recv", [&] {
    auto buffer = context_->createUnboundBuffer(nonNull(data), bytes);
    buffer->recv(peer, kUserSlotPrefix | tag);
    pending.reset(new GlooTransfer(std::move(buffer), false, peer));
  });
  return pending;
}

std::shared_ptr<Backend> GlooBackend::split(int newRank, int newSize,
                                            const std::string& key, Millis timeout) {
  std::shared_ptr<Backend> child;
  translateGlooErrors("split", [&] {
    GlooConnectOptions options = options_;
    options.rank = newRank;
    options.size = newSize;
    options.prefix = options_.prefix + "/" + key;
    options.timeout = timeout;
    child = create(options, device_);
  });
  return child;
}

}  // namespace collectives
