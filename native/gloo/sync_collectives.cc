#include "sync_collectives.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include <gloo/allgather_ring.h>
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/allreduce_ring.h>
#include <gloo/barrier_all_to_one.h>
#include <gloo/broadcast_one_to_all.h>
#include <gloo/reduce_scatter.h>

#include "../errors.h"
#include "../reduce_ops.h"

namespace collectives {
namespace {

enum : int { kOpAllReduce, kOpReduceScatter, kOpAllGather, kOpBroadcast, kOpBarrier };

template <typename T> constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::kFloat32; }
template <> constexpr DType dtypeOf<double>() { return DType::kFloat64; }
template <> constexpr DType dtypeOf<int8_t>() { return DType::kInt8; }
template <> constexpr DType dtypeOf<uint8_t>() { return DType::kUint8; }
template <> constexpr DType dtypeOf<int32_t>() { return DType::kInt32; }
template <> constexpr DType dtypeOf<int64_t>() { return DType::kInt64; }

// Gloo's built-in reductions use plain operators; these keep the backend's
// semantics (wrapping integers, NaN-propagating min and max).
template <typename T, RedOp Op>
void reduceAdapter(T* x, const T* y, size_t n) {
  reduceInto(dtypeOf<T>(), Op, x, y, n);
}

template <typename T>
const gloo::ReductionFunction<T>* reduction(RedOp op) {
  static const gloo::ReductionFunction<T> sum(gloo::CUSTOM, &reduceAdapter<T, RedOp::kSum>);
  static const gloo::ReductionFunction<T> prod(gloo::CUSTOM, &reduceAdapter<T, RedOp::kProd>);
  static const gloo::ReductionFunction<T> min(gloo::CUSTOM, &reduceAdapter<T, RedOp::kMin>);
  static const gloo::ReductionFunction<T> max(gloo::CUSTOM, &reduceAdapter<T, RedOp::kMax>);
  static const gloo::ReductionFunction<T> band(gloo::CUSTOM, &reduceAdapter<T, RedOp::kBand>);
  static const gloo::ReductionFunction<T> bor(gloo::CUSTOM, &reduceAdapter<T, RedOp::kBor>);
  static const gloo::ReductionFunction<T> bxor(gloo::CUSTOM, &reduceAdapter<T, RedOp::kBxor>);
  switch (op) {
    case RedOp::kProd: return &prod;
    case RedOp::kMin: return &min;
    case RedOp::kMax: return &max;
    case RedOp::kBand: return &band;
    case RedOp::kBor: return &bor;
    case RedOp::kBxor: return &bxor;
    default: return &sum;  // AVG reduces as SUM; the backend divides.
  }
}

template <typename T>
std::unique_ptr<gloo::Algorithm> makeAllReduce(const std::shared_ptr<gloo::Context>& context,
                                               GlooAlgo algo, void* data, size_t count,
                                               RedOp op) {
  std::vector<T*> ptrs{static_cast<T*>(data)};
  if (algo == GlooAlgo::kSyncRing) {
    return std::make_unique<gloo::AllreduceRing<T>>(context, ptrs, int(count), reduction<T>(op));
  }
  return std::make_unique<gloo::AllreduceHalvingDoubling<T>>(context, ptrs, int(count),
                                                             reduction<T>(op));
}

template <typename T>
std::unique_ptr<gloo::Algorithm> makeReduceScatter(const std::shared_ptr<gloo::Context>& context,
                                                   void* data, size_t countPerRank, RedOp op) {
  std::vector<T*> ptrs{static_cast<T*>(data)};
  std::vector<int> recvElems(context->size, int(countPerRank));
  return std::make_unique<gloo::ReduceScatterHalvingDoubling<T>>(
      context, ptrs, int(countPerRank * context->size), recvElems, reduction<T>(op));
}

#define COLLECTIVES_SYNC_DISPATCH(dtype, F, ...)                         \
  [&]() -> std::unique_ptr<gloo::Algorithm> {                            \
    switch (dtype) {                                                     \
      case DType::kFloat32: return F<float>(__VA_ARGS__);                \
      case DType::kFloat64: return F<double>(__VA_ARGS__);               \
      case DType::kInt8: return F<int8_t>(__VA_ARGS__);                  \
      case DType::kUint8: return F<uint8_t>(__VA_ARGS__);                \
      case DType::kInt32: return F<int32_t>(__VA_ARGS__);                \
      case DType::kInt64: return F<int64_t>(__VA_ARGS__);                \
      default:                                                           \
        throw CollectiveFailure(codes::kInternal, "unexpected half dtype"); \
    }                                                                    \
  }()

}  // namespace

size_t syncMessageLimit() {
  auto readFirst = [](const char* path, int column, size_t fallback) -> size_t {
    std::ifstream in(path);
    size_t v = 0;
    for (int i = 0; i <= column; i++) {
      if (!(in >> v)) return fallback;
    }
    return v;
  };
  // Linux's defaults, used when /proc cannot be read.
  const size_t wmemMax = readFirst("/proc/sys/net/core/wmem_max", 0, 212992);
  const size_t rmemStart = readFirst("/proc/sys/net/ipv4/tcp_rmem", 1, 131072);
  const size_t sendBuffer = std::min<size_t>(2 * wmemMax, 2 * (size_t(32) << 20));
  return (sendBuffer + rmemStart) / 2;
}

SyncCollectives::SyncCollectives(std::shared_ptr<gloo::Context> context)
    : context_(std::move(context)) {}

template <typename Make>
SyncCollectives::Entry& SyncCollectives::cached(const Key& key, size_t inBytes,
                                                size_t outBytes, size_t instanceBytes,
                                                Make&& make) {
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    if (it->key == key) {
      if (it != cache_.begin()) cache_.splice(cache_.begin(), cache_, it);
      return cache_.front();
    }
  }
  const size_t footprint = inBytes + outBytes + instanceBytes;
  // Evictions depend only on keys and sizes, which every rank has in common.
  while (!cache_.empty() && (cache_.size() >= kSyncCacheEntries ||
                             cachedBytes_ + footprint > kSyncCacheMaxFootprint)) {
    cachedBytes_ -= cache_.back().footprint;
    cache_.pop_back();
  }
  cache_.emplace_front();
  Entry& e = cache_.front();
  e.key = key;
  e.footprint = footprint;
  try {
    e.in.resize(inBytes);
    e.out.resize(outBytes);
    e.algorithm = make(e);
  } catch (...) {
    cache_.pop_front();
    throw;
  }
  cachedBytes_ += footprint;
  return e;
}

void SyncCollectives::allReduce(GlooAlgo algo, const void* in, void* out, size_t count,
                                DType dtype, RedOp op, size_t chunkBytes) {
  const size_t esize = dtypeSize(dtype);
  const size_t bytes = count * esize;
  if (bytes <= kSyncCacheMaxBytes && bytes <= chunkBytes) {
    Key key{kOpAllReduce, int(algo), int(dtype), int(op), 0, count};
    Entry& e = cached(key, bytes, 0, bytes, [&](Entry& entry) {
      return COLLECTIVES_SYNC_DISPATCH(dtype, makeAllReduce, context_, algo, entry.in.data(),
                                       count, op);
    });
    std::memcpy(e.in.data(), in, bytes);
    e.algorithm->run();
    std::memcpy(out, e.in.data(), bytes);
    return;
  }
  if (in != out) std::memcpy(out, in, bytes);
  const size_t chunkCount = chunkBytes / esize;
  for (size_t first = 0; first < count; first += chunkCount) {
    const size_t n = std::min(chunkCount, count - first);
    void* data = static_cast<char*>(out) + first * esize;
    COLLECTIVES_SYNC_DISPATCH(dtype, makeAllReduce, context_, algo, data, n, op)->run();
  }
}

void SyncCollectives::reduceScatter(const void* in, void* out, size_t countPerRank,
                                    DType dtype, RedOp op) {
  const size_t chunkBytes = countPerRank * dtypeSize(dtype);
  const size_t bytes = chunkBytes * context_->size;
  // The algorithm reduces in place over the whole array (so it works on a
  // copy: the caller's input stays untouched) and leaves this rank's part at
  // the start of it.
  if (bytes <= kSyncReduceScatterCacheMaxBytes) {
    Key key{kOpReduceScatter, 0, int(dtype), int(op), 0, countPerRank};
    Entry& e = cached(key, bytes, 0, 2 * bytes, [&](Entry& entry) {
      return COLLECTIVES_SYNC_DISPATCH(dtype, makeReduceScatter, context_, entry.in.data(),
                                       countPerRank, op);
    });
    std::memcpy(e.in.data(), in, bytes);
    e.algorithm->run();
    std::memcpy(out, e.in.data(), chunkBytes);
    return;
  }
  std::vector<char> work(static_cast<const char*>(in), static_cast<const char*>(in) + bytes);
  auto algorithm = COLLECTIVES_SYNC_DISPATCH(dtype, makeReduceScatter, context_, work.data(),
                                             countPerRank, op);
  algorithm->run();
  std::memcpy(out, work.data(), chunkBytes);
}

void SyncCollectives::allGather(const void* in, void* out, size_t chunkBytes) {
  const size_t bytes = chunkBytes * context_->size;
  auto make = [&](const char* from, char* to) -> std::unique_ptr<gloo::Algorithm> {
    std::vector<const char*> inPtrs{from};
    return std::make_unique<gloo::AllgatherRing<char>>(context_, inPtrs, to, int(chunkBytes));
  };
  if (bytes <= kSyncCacheMaxBytes) {
    Key key{kOpAllGather, 0, 0, 0, 0, chunkBytes};
    Entry& e = cached(key, chunkBytes, bytes, 0,
                      [&](Entry& entry) { return make(entry.in.data(), entry.out.data()); });
    std::memcpy(e.in.data(), in, chunkBytes);
    e.algorithm->run();
    std::memcpy(out, e.out.data(), bytes);
    return;
  }
  // The ring first copies the input into this rank's chunk of the output;
  // an input that already is that chunk is staged so the copy never overlaps.
  std::vector<char> staged;
  const char* from = static_cast<const char*>(in);
  char* to = static_cast<char*>(out);
  if (from == to + chunkBytes * context_->rank) {
    staged.assign(from, from + chunkBytes);
    from = staged.data();
  }
  make(from, to)->run();
}

void SyncCollectives::broadcast(void* data, size_t bytes, int root) {
  auto make = [&](char* p) -> std::unique_ptr<gloo::Algorithm> {
    std::vector<char*> ptrs{p};
    return std::make_unique<gloo::BroadcastOneToAll<char>>(context_, ptrs, bytes, root, 0);
  };
  if (bytes <= kSyncCacheMaxBytes) {
    Key key{kOpBroadcast, 0, 0, 0, root, bytes};
    Entry& e = cached(key, bytes, 0, 0, [&](Entry& entry) { return make(entry.in.data()); });
    const bool isRoot = context_->rank == root;
    if (isRoot) std::memcpy(e.in.data(), data, bytes);
    e.algorithm->run();
    if (!isRoot) std::memcpy(data, e.in.data(), bytes);
    return;
  }
  make(static_cast<char*>(data))->run();
}

void SyncCollectives::barrier() {
  Key key{kOpBarrier, 0, 0, 0, 0, 0};
  Entry& e = cached(key, 0, 0, 0, [&](Entry&) -> std::unique_ptr<gloo::Algorithm> {
    return std::make_unique<gloo::BarrierAllToOne>(context_);
  });
  e.algorithm->run();
}

}  // namespace collectives
