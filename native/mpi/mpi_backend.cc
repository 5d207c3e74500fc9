#include "mpi/mpi_backend.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>

#include "errors.h"
#include "mpi/mpi_runtime.h"
#include "reduce_ops.h"

namespace collectives {
namespace mpi {
namespace {

using Clock = std::chrono::steady_clock;

// MPI counts are ints.
constexpr size_t kMaxCount = size_t(INT_MAX);
// Tests of a request before the waiting thread starts yielding its core: an
// 8-byte all-reduce on one host completes within a few microseconds, and a
// rank sharing its core with another (more ranks than cores) must let it run.
constexpr uint64_t kSpinTests = 64;
constexpr auto kProbeEvery = std::chrono::milliseconds(100);
// From this size on all-reduce runs as the engine's ring (measured: bench/RESULTS.md).
constexpr size_t kRingMinBytes = size_t(1) << 20;

const MpiApi& api() { return MpiRuntime::get().api(); }

// A zero-length typed array may have no backing store; MPI wants a pointer.
char gEmpty[8];
inline void* nonNull(const void* p) { return p ? const_cast<void*>(p) : static_cast<void*>(gEmpty); }

int toCount(size_t count, const char* operation) {
  if (count > kMaxCount) {
    throw CollectiveFailure(codes::kInvalidArgument,
                            std::string(operation) + ": " + std::to_string(count) +
                                " elements per call or per rank is beyond MPI's int counts (2^31 - 1)");
  }
  return int(count);
}

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Ranks that share this host and process namespace can see each other's
// processes: the host name and the pid namespace name it.
uint64_t placeHash() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  char ns[128] = {0};
  ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
  return fnv1a(std::string(host) + "|" + (n > 0 ? std::string(ns, size_t(n)) : std::string()));
}

// Whether process `pid` has exited (or is a zombie that nobody reaped yet).
bool exited(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return access("/proc/self/stat", F_OK) == 0;  // no /proc: cannot tell
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return false;
  const char state = text[close + 2];
  return state == 'Z' || state == 'X' || state == 'x';
}

class MpiTransfer : public PendingTransfer {
 public:
  using Await = std::function<void(MPI_Request&, Millis)>;
  MpiTransfer(MPI_Request request, Await await) : request_(request), await_(std::move(await)) {}
  void wait(Millis timeout) override { await_(request_, timeout); }

 private:
  MPI_Request request_;
  Await await_;
};

}  // namespace

int MpiPeers::firstExited(int self) const {
  for (size_t r = 0; r < pids.size(); r++) {
    if (int(r) != self && local[r] && exited(pids[r])) return int(r);
  }
  return -1;
}

MpiPeers MpiPeers::subset(const std::vector<int>& parentRanks) const {
  MpiPeers out;
  for (int r : parentRanks) {
    out.pids.push_back(pids[size_t(r)]);
    out.local.push_back(local[size_t(r)]);
  }
  return out;
}

std::shared_ptr<MpiBackend> MpiBackend::connect(int rank, int size, Millis timeout) {
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  int worldRank = -1, worldSize = 0;
  {
    auto held = runtime.lock();
    a.MPI_Comm_rank(a.commWorld, &worldRank);
    a.MPI_Comm_size(a.commWorld, &worldSize);
  }
  if (worldRank != rank || worldSize != size) {
    throw CollectiveFailure(
        codes::kInvalidArgument,
        "init: the MPI engine needs the ranks mpirun started: MPI says rank " + std::to_string(worldRank) +
            " of " + std::to_string(worldSize) + ", the options or environment say rank " + std::to_string(rank) +
            " of " + std::to_string(size) +
            " (start the job with mpirun -np N, not collectives-run or torchrun, or use engine 'gloo')");
  }
  MPI_Comm comm = nullptr;
  MPI_Request request = a.requestNull;
  {
    auto held = runtime.lock();
    int rc = a.MPI_Comm_idup(a.commWorld, &comm, &request);
    if (rc != MPI_SUCCESS) throw CollectiveFailure(codes::kInternal, a.describe("MPI_Comm_idup", rc));
  }
  // The liveness checks start once the peers are known: until then only the
  // timeout ends a wait.
  auto none = std::make_shared<MpiPeers>();
  none->pids.assign(size_t(size), 0);
  none->local.assign(size_t(size), 0);
  std::shared_ptr<MpiBackend> backend(new MpiBackend(nullptr, rank, size, none));
  backend->await(request, "init", timeout);
  backend->comm_ = comm;
  {
    auto held = runtime.lock();
    a.MPI_Comm_set_errhandler(comm, a.errorsReturn);
  }
  struct Place {
    uint64_t host;
    int64_t pid;
  };
  Place mine{placeHash(), int64_t(getpid())};
  std::vector<Place> all(static_cast<size_t>(size));
  backend->allGather(&mine, all.data(), sizeof(Place), DType::kUint8, timeout);
  auto peers = std::make_shared<MpiPeers>();
  for (const Place& p : all) {
    peers->pids.push_back(int(p.pid));
    peers->local.push_back(p.host == mine.host ? 1 : 0);
  }
  backend->peers_ = peers;
  backend->openRing(timeout);
  return backend;
}

void MpiBackend::openRing(Millis timeout) {
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  MPI_Comm ring = nullptr;
  MPI_Request request;
  {
    auto held = runtime.lock();
    check(a.MPI_Comm_idup(comm_, &ring, &request), "MPI_Comm_idup", "init");
  }
  await(request, "init", timeout);
  ring_ = ring;
}

MpiBackend::MpiBackend(MPI_Comm comm, int rank, int size, std::shared_ptr<const MpiPeers> peers)
    : comm_(comm), rank_(rank), size_(size), peers_(std::move(peers)) {}

MpiBackend::~MpiBackend() {
  if (!comm_ || abandoned_.load()) return;
  try {
    auto held = MpiRuntime::get().lock();
    if (ring_) api().MPI_Comm_free(&ring_);
    api().MPI_Comm_free(&comm_);
  } catch (const CollectiveFailure&) {
    // MPI was finalized: the communicator went with it.
  }
}

// Called with the runtime's lock held: MPI_Error_class and MPI_Error_string are MPI calls too.
void MpiBackend::check(int rc, const char* call, const char* operation) const {
  if (rc == MPI_SUCCESS) return;
  const MpiApi& a = api();
  int cls = rc;
  a.MPI_Error_class(rc, &cls);
  std::string what = std::string(operation) + ": " + a.describe(call, rc);
  if (cls == MPI_ERR_TRUNCATE) {
    throw CollectiveFailure(codes::kMismatch, what + " (a peer sent more than this rank's count: ranks passed different counts)");
  }
  if (cls == MPIX_ERR_PROC_FAILED || cls == MPIX_ERR_PROC_FAILED_PENDING || cls == MPIX_ERR_REVOKED) {
    throw CollectiveFailure(codes::kPeerLost, what);
  }
  throw CollectiveFailure(codes::kInternal, what);
}

void MpiBackend::await(MPI_Request& request, const char* operation, Millis timeout, int peer) {
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  auto nextProbe = start + kProbeEvery;
  for (uint64_t tests = 0;; tests++) {
    int done = 0;
    {
      auto held = runtime.lock();
      // A failed request is complete, and MPI has released it.
      check(a.MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test", operation);
    }
    if (done) return;
    if (tests < kSpinTests) continue;
    sched_yield();
    if ((tests & 15) != 0) continue;
    const auto now = Clock::now();
    int lost = -1;
    if (now >= nextProbe) {
      nextProbe = now + kProbeEvery;
      if (peer < 0) {
        lost = peers_->firstExited(rank_);
      } else if (peers_->local[size_t(peer)] && exited(peers_->pids[size_t(peer)])) {
        lost = peer;
      }
    }
    if (lost < 0 && now < deadline) continue;
    // Left behind: a point-to-point request can be cancelled; a collective
    // cannot, and may still complete (and write its output) later.
    {
      auto held = runtime.lock();
      if (peer >= 0 && a.MPI_Cancel(&request) == MPI_SUCCESS) a.MPI_Request_free(&request);
    }
    abandoned_.store(true);
    runtime.markAbandoned();
    if (lost >= 0) {
      throw CollectiveFailure(codes::kPeerLost,
                              std::string(operation) + ": the process of rank " + std::to_string(lost) +
                                  " (pid " + std::to_string(peers_->pids[size_t(lost)]) +
                                  " on this host) exited (MPI rank " + std::to_string(lost) + ")");
    }
    throw CollectiveFailure(codes::kTimeout,
                            std::string(operation) + ": timed out after " + std::to_string(timeout.count()) +
                                " ms (MPI cannot say which rank is late: a rank on another host that died, "
                                "or one that called a different collective)");
  }
}

bool MpiBackend::pairOp(DType dtype, RedOp op) const {
  return isHalf(dtype) && (size_ <= 2 || op == RedOp::kMin || op == RedOp::kMax);
}

char* MpiBackend::scratch(size_t bytes) {
  // Kept between calls: fresh pages for a large buffer cost a fault each.
  if (scratch_.size() < bytes) scratch_.resize(bytes);
  return scratch_.data();
}

// All-reduce. Half types with two ranks (or min / max) go over the wire as
// 16-bit values through the engine's op, which combines each pair in float32
// and rounds once: with two ranks that is the float32 result rounded once,
// as the Gloo engine computes it, for half the bytes. With more ranks MPI
// would round at every step, so the values are widened to float32 first and
// rounded once at the end.
void MpiBackend::allReduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                           Millis timeout) {
  if (count == 0) return;
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  if (isHalf(dtype) && !pairOp(dtype, op)) {
    float* wide = reinterpret_cast<float*>(scratch(count * sizeof(float)));
    widenHalf(dtype, static_cast<const uint16_t*>(in), wide, count);
    allReduce(wide, wide, count, DType::kFloat32, op, timeout);
    narrowHalf(dtype, wide, static_cast<uint16_t*>(out), count);
    return;
  }
  const size_t esize = dtypeSize(dtype);
  static const bool ringOff = [] {
    const char* v = std::getenv("COLLECTIVES_MPI_RING");
    return v && std::string(v) == "0";
  }();
  if (!ringOff && !isHalf(dtype) && size_ > 1 && ring_ && count * esize >= kRingMinBytes &&
      count / size_t(size_) + 1 < kMaxCount) {
    ringAllReduce(in, out, count, dtype, op, timeout);
    if (op == RedOp::kAvg) divideInPlace(dtype, out, count, size_);
    return;
  }
  const MPI_Datatype type = a.datatype(dtype);
  const MPI_Op mop = runtime.reduceOp(dtype, op);
  for (size_t done = 0; done < count; done += kMaxCount) {
    const int n = int(std::min(kMaxCount, count - done));
    char* o = static_cast<char*>(out) + done * esize;
    const void* i = in == out ? MPI_IN_PLACE : static_cast<const char*>(in) + done * esize;
    MPI_Request request;
    {
      auto held = runtime.lock();
      check(a.MPI_Iallreduce(i, o, n, type, mop, comm_, &request), "MPI_Iallreduce", "allReduce");
    }
    await(request, "allReduce", timeout);
  }
  if (op == RedOp::kAvg && !isHalf(dtype)) divideInPlace(dtype, out, count, size_);
}

void MpiBackend::ringAllReduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                               Millis timeout) {
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const size_t esize = dtypeSize(dtype);
  const int n = size_;
  const size_t base = count / size_t(n), rem = count % size_t(n);
  auto begin = [&](int b) { return size_t(b) * base + std::min(size_t(b), rem); };
  auto length = [&](int b) { return base + (size_t(b) < rem ? 1 : 0); };
  char* o = static_cast<char*>(out);
  if (in != out) std::memcpy(out, in, count * esize);
  char* tmp = scratch((base + 1) * esize);
  const int right = (rank_ + 1) % n, left = (rank_ + n - 1) % n;
  auto exchange = [&](int sendBlock, char* into, int recvBlock) {
    MPI_Request recv, send;
    {
      auto held = runtime.lock();
      check(a.MPI_Irecv(into, int(length(recvBlock) * esize), a.byte, left, 0, ring_, &recv), "MPI_Irecv", "allReduce");
      check(a.MPI_Isend(o + begin(sendBlock) * esize, int(length(sendBlock) * esize), a.byte, right, 0, ring_, &send),
            "MPI_Isend", "allReduce");
    }
    await(recv, "allReduce", timeout, left);
    await(send, "allReduce", timeout, right);
  };
  // Reduce-scatter: after step s this rank holds s + 2 contributions to
  // block (rank - s - 1); after n - 1 steps, all of block (rank + 1).
  for (int s = 0; s < n - 1; s++) {
    const int recvBlock = (rank_ - s - 1 + 2 * n) % n;
    exchange((rank_ - s + n) % n, tmp, recvBlock);
    reduceInto(dtype, op, o + begin(recvBlock) * esize, tmp, length(recvBlock));
  }
  // All-gather: the reduced blocks travel on around the ring.
  for (int s = 0; s < n - 1; s++) {
    const int recvBlock = (rank_ - s + n) % n;
    exchange((rank_ + 1 - s + n) % n, o + begin(recvBlock) * esize, recvBlock);
  }
}

void MpiBackend::reduceScatter(const void* in, void* out, size_t countPerRank, DType dtype,
                               RedOp op, Millis timeout) {
  if (countPerRank == 0) return;
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const int n = toCount(countPerRank, "reduceScatter");
  const size_t esize = dtypeSize(dtype);
  if (isHalf(dtype) && !pairOp(dtype, op)) {
    const size_t total = countPerRank * size_t(size_);
    float* wide = reinterpret_cast<float*>(scratch((total + countPerRank) * sizeof(float)));
    float* result = wide + total;
    widenHalf(dtype, static_cast<const uint16_t*>(in), wide, total);
    reduceScatter(wide, result, countPerRank, DType::kFloat32, op, timeout);
    narrowHalf(dtype, result, static_cast<uint16_t*>(out), countPerRank);
    return;
  }
  // MPI forbids an output inside the input (the facade allows it): such an
  // output is staged and copied out.
  const char* src = static_cast<const char*>(in);
  char* target = static_cast<char*>(out);
  const size_t inBytes = countPerRank * esize * size_t(size_), outBytes = countPerRank * esize;
  const bool overlapsInput = target < src + inBytes && src < target + outBytes;
  char* dst = overlapsInput ? scratch(outBytes) : target;
  MPI_Request request;
  {
    auto held = runtime.lock();
    const MPI_Op mop = runtime.reduceOp(dtype, op);
    check(a.MPI_Ireduce_scatter_block(in, dst, n, a.datatype(dtype), mop, comm_, &request),
          "MPI_Ireduce_scatter_block", "reduceScatter");
  }
  await(request, "reduceScatter", timeout);
  if (op == RedOp::kAvg && !isHalf(dtype)) divideInPlace(dtype, dst, countPerRank, size_);
  if (dst != target) std::memcpy(target, dst, outBytes);
}

void MpiBackend::allGather(const void* in, void* out, size_t countPerRank, DType dtype,
                           Millis timeout) {
  if (countPerRank == 0) return;
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const int n = toCount(countPerRank, "allGather");
  toCount(countPerRank * size_t(size_), "allGather");
  const char* own = static_cast<const char*>(out) + size_t(rank_) * countPerRank * dtypeSize(dtype);
  const MPI_Datatype type = a.datatype(dtype);
  MPI_Request request;
  {
    auto held = runtime.lock();
    // The communicator passes an input that overlaps the output only when it
    // is this rank's own slot, which is MPI_IN_PLACE's meaning.
    if (in == own) {
      check(a.MPI_Iallgather(MPI_IN_PLACE, 0, type, out, n, type, comm_, &request), "MPI_Iallgather", "allGather");
    } else {
      check(a.MPI_Iallgather(in, n, type, out, n, type, comm_, &request), "MPI_Iallgather", "allGather");
    }
  }
  await(request, "allGather", timeout);
}

void MpiBackend::broadcast(void* data, size_t count, DType dtype, int root, Millis timeout) {
  if (count == 0) return;
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const size_t esize = dtypeSize(dtype);
  for (size_t done = 0; done < count; done += kMaxCount) {
    const int n = int(std::min(kMaxCount, count - done));
    MPI_Request request;
    {
      auto held = runtime.lock();
      check(a.MPI_Ibcast(static_cast<char*>(data) + done * esize, n, a.datatype(dtype), root, comm_, &request),
            "MPI_Ibcast", "broadcast");
    }
    await(request, "broadcast", timeout);
  }
}

void MpiBackend::reduce(const void* in, void* out, size_t count, DType dtype, RedOp op, int root,
                        Millis timeout) {
  if (count == 0) return;
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const bool isRoot = rank_ == root;
  if (isHalf(dtype) && !pairOp(dtype, op)) {
    float* wide = reinterpret_cast<float*>(scratch(2 * count * sizeof(float)));
    float* result = wide + count;
    widenHalf(dtype, static_cast<const uint16_t*>(in), wide, count);
    reduce(wide, result, count, DType::kFloat32, op, root, timeout);
    if (isRoot) narrowHalf(dtype, result, static_cast<uint16_t*>(out), count);
    return;
  }
  const size_t esize = dtypeSize(dtype), bytes = count * esize;
  // The root's output must not overlap its input unless it is the input.
  const char* src = static_cast<const char*>(in);
  char* target = static_cast<char*>(out);
  const bool inPlace = isRoot && in == out;
  const bool staged = isRoot && !inPlace && target < src + bytes && src < target + bytes;
  char* dst = staged ? scratch(bytes) : target;
  const MPI_Datatype type = a.datatype(dtype);
  const MPI_Op mop = runtime.reduceOp(dtype, op);
  for (size_t done = 0; done < count; done += kMaxCount) {
    const int n = int(std::min(kMaxCount, count - done));
    const void* i = inPlace ? MPI_IN_PLACE : src + done * esize;
    void* o = isRoot ? dst + done * esize : nullptr;
    MPI_Request request;
    {
      auto held = runtime.lock();
      check(a.MPI_Ireduce(i, o, n, type, mop, root, comm_, &request), "MPI_Ireduce", "reduce");
    }
    await(request, "reduce", timeout);
  }
  if (!isRoot) return;
  if (op == RedOp::kAvg && !isHalf(dtype)) divideInPlace(dtype, dst, count, size_);
  if (staged) std::memcpy(target, dst, bytes);
}

void MpiBackend::barrier(Millis timeout) {
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  MPI_Request request;
  {
    auto held = runtime.lock();
    check(a.MPI_Ibarrier(comm_, &request), "MPI_Ibarrier", "barrier");
  }
  await(request, "barrier", timeout);
}

// MPI leaves a count that differs between sender and receiver undefined (a
// truncation error at best), so the all-to-alls first gather every rank's
// counts and every rank rejects alike when they disagree, as the Gloo
// engine does.
void MpiBackend::checkAllToAllSizes(const char* operation, const std::vector<int64_t>& inCounts,
                                    const std::vector<int64_t>& outCounts, DType dtype, Millis timeout) {
  if (size_ == 1) return;
  const size_t n = size_t(size_);
  const int64_t esize = int64_t(dtypeSize(dtype));
  std::vector<int64_t> mine(2 * n), all(2 * n * n);
  for (size_t r = 0; r < n; r++) {
    mine[r] = inCounts[r] * esize;
    mine[n + r] = outCounts[r] * esize;
  }
  allGather(mine.data(), all.data(), mine.size(), DType::kInt64, timeout);
  for (size_t r = 0; r < n; r++) {
    for (size_t k = 0; k < n; k++) {
      if (all[r * 2 * n + k] != all[k * 2 * n + n + r]) {
        throw CollectiveFailure(codes::kMismatch,
                                std::string(operation) + ": ranks passed sizes that do not match: rank " +
                                    std::to_string(r) + " sends " + std::to_string(all[r * 2 * n + k]) +
                                    " bytes to rank " + std::to_string(k) + ", which expects " +
                                    std::to_string(all[k * 2 * n + n + r]));
      }
    }
  }
}

void MpiBackend::allToAll(const void* in, void* out, size_t countPerRank, DType dtype, Millis timeout) {
  const std::vector<int64_t> each(static_cast<size_t>(size_), static_cast<int64_t>(countPerRank));
  checkAllToAllSizes("allToAll", each, each, dtype, timeout);
  if (countPerRank == 0) return;
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const int n = toCount(countPerRank, "allToAll");
  toCount(countPerRank * size_t(size_), "allToAll");
  const MPI_Datatype type = a.datatype(dtype);
  MPI_Request request;
  {
    auto held = runtime.lock();
    check(a.MPI_Ialltoall(in, n, type, out, n, type, comm_, &request), "MPI_Ialltoall", "allToAll");
  }
  await(request, "allToAll", timeout);
}

void MpiBackend::allToAllV(const void* in, const std::vector<int64_t>& inCounts, void* out,
                           const std::vector<int64_t>& outCounts, DType dtype, Millis timeout) {
  checkAllToAllSizes("allToAllV", inCounts, outCounts, dtype, timeout);
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const size_t n = size_t(size_);
  std::vector<int> sendCounts(n), sendDispls(n), recvCounts(n), recvDispls(n);
  size_t sendAt = 0, recvAt = 0;
  for (size_t r = 0; r < n; r++) {
    sendCounts[r] = toCount(size_t(inCounts[r]), "allToAllV");
    recvCounts[r] = toCount(size_t(outCounts[r]), "allToAllV");
    sendDispls[r] = toCount(sendAt, "allToAllV");
    recvDispls[r] = toCount(recvAt, "allToAllV");
    sendAt += size_t(inCounts[r]);
    recvAt += size_t(outCounts[r]);
  }
  const MPI_Datatype type = a.datatype(dtype);
  MPI_Request request;
  {
    auto held = runtime.lock();
    check(a.MPI_Ialltoallv(nonNull(in), sendCounts.data(), sendDispls.data(), type, nonNull(out),
                           recvCounts.data(), recvDispls.data(), type, comm_, &request),
          "MPI_Ialltoallv", "allToAllV");
  }
  await(request, "allToAllV", timeout);
}

// User tags are 32 bits; MPI's go up to MPI_TAG_UB, which Open MPI sets to
// 2^31 - 1. Tags that differ only in the top bit share an MPI tag.
std::unique_ptr<PendingTransfer> MpiBackend::postSend(const void* data, size_t bytes, int peer, uint32_t tag) {
  return post(true, const_cast<void*>(data), bytes, peer, tag);
}

std::unique_ptr<PendingTransfer> MpiBackend::postRecv(void* data, size_t bytes, int peer, uint32_t tag) {
  return post(false, data, bytes, peer, tag);
}

std::unique_ptr<PendingTransfer> MpiBackend::post(bool send, void* data, size_t bytes, int peer, uint32_t tag) {
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  const char* what = send ? "send" : "recv";
  const int mpiTag = int(tag & 0x7fffffffu);
  MPI_Request request;
  {
    auto held = runtime.lock();
    if (send) {
      check(a.MPI_Isend(nonNull(data), toCount(bytes, what), a.byte, peer, mpiTag, comm_, &request), "MPI_Isend", what);
    } else {
      check(a.MPI_Irecv(nonNull(data), toCount(bytes, what), a.byte, peer, mpiTag, comm_, &request), "MPI_Irecv", what);
    }
  }
  auto self = shared_from_this();
  return std::make_unique<MpiTransfer>(request, [self, peer, what](MPI_Request& r, Millis timeout) {
    self->await(r, what, timeout, peer);
  });
}

std::shared_ptr<Backend> MpiBackend::split(int, int, const std::string&, Millis) {
  throw CollectiveFailure(codes::kInternal, "split: the MPI engine needs the members' ranks (splitRanks)");
}

std::shared_ptr<Backend> MpiBackend::splitRanks(const std::vector<int>& parentRanks, int newRank,
                                                const std::string& key, Millis timeout) {
  MpiRuntime& runtime = MpiRuntime::get();
  const MpiApi& a = runtime.api();
  // The same on every member, and different for splits that may run at
  // once (the key names the split's sequence number and color).
  const int tag = int(fnv1a(key) & 0x7fffffffu);
  MPI_Comm child = nullptr;
  {
    // MPI_Comm_create_group has no non-blocking form before MPI 4: it holds
    // the lock until every member has called it. Open MPI keeps progressing
    // the other communicators' requests meanwhile.
    auto held = runtime.lock();
    MPI_Group parent = nullptr, members = nullptr;
    check(a.MPI_Comm_group(comm_, &parent), "MPI_Comm_group", "split");
    int rc = a.MPI_Group_incl(parent, int(parentRanks.size()), parentRanks.data(), &members);
    a.MPI_Group_free(&parent);
    check(rc, "MPI_Group_incl", "split");
    rc = a.MPI_Comm_create_group(comm_, members, tag, &child);
    a.MPI_Group_free(&members);
    check(rc, "MPI_Comm_create_group", "split");
    a.MPI_Comm_set_errhandler(child, a.errorsReturn);
  }
  auto peers = std::make_shared<MpiPeers>(peers_->subset(parentRanks));
  std::shared_ptr<MpiBackend> made(new MpiBackend(child, newRank, int(parentRanks.size()), std::move(peers)));
  made->openRing(timeout);
  return made;
}

}  // namespace mpi
}  // namespace collectives
