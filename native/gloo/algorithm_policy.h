// Which Gloo engine and algorithm runs an operation of a given size.
//
// Gloo offers two ways to drive its TCP pairs. In the default (asynchronous)
// mode a device loop thread moves every message and the caller waits on a
// condition variable: two thread hand-offs per message. In synchronous mode
// the calling thread (here, the communicator's queue thread) sends and
// receives itself. Gloo's unbound-buffer functions refuse synchronous pairs;
// its older algorithm classes need them to be fast. The backend therefore
// keeps one context of each kind and picks per call. bench/RESULTS.md holds
// the measurements behind the defaults below.
#pragma once

#include <cstddef>
#include <string>

namespace collectives {

enum class GlooOp { kAllReduce, kReduceScatter, kAllGather, kBroadcast, kBarrier, kReduce, kAllToAll };

enum class GlooAlgo {
  kAsyncRing,              // gloo::allreduce, ring (unbound buffers)
  kAsyncAllToAllReduce,    // gloo::alltoall, then a local reduce
  kAsync,                  // the op's unbound-buffer function
  kSyncRing,               // AllreduceRing / AllgatherRing
  kSyncHalvingDoubling,    // AllreduceHalvingDoubling / ReduceScatterHalvingDoubling
  kSyncOneToAll,           // BroadcastOneToAll
  kSyncAllToOne,           // BarrierAllToOne
};

struct GlooTuning {
  // "auto": the measured choice below; "async": Gloo's default mode for
  // everything (the baseline). "sync" is accepted as an alias of "auto".
  enum class Mode { kAuto, kAsync } mode = Mode::kAuto;
  // All-reduce algorithm on synchronous pairs: 0 = by size, else forced.
  enum class AllReduce { kAuto, kRing, kHalvingDoubling } allReduce = AllReduce::kAuto;
  // Spin on the socket instead of sleeping in recv(2). Only pays when every
  // rank has a core to itself; the caller decides (see lib/core/tuning.ts).
  bool busyPoll = false;
  // Largest message one pair may write in a single step on synchronous pairs.
  // There, both ends of a pair can be inside a blocking write at once (a ring
  // step, a halving-doubling exchange), and nobody reads until the writes
  // finish: a message larger than the socket buffers can hold deadlocks.
  // Larger operations run in the asynchronous mode, whose loop thread always
  // reads. See syncMessageLimit().
  size_t syncMessageLimit = 0;
  // Calls of at most this many bytes (0: none) that would run on the
  // synchronous pairs run on the JavaScript thread itself when the
  // communicator has nothing in flight, skipping the wake-ups of the queue
  // thread and of the JavaScript thread (Communicator::inlineNow).
  size_t inlineBytes = 0;
  // The default's extra condition: only while this communicator is the only
  // open one of more than one rank in its thread. Calls on two communicators
  // may be issued in different orders on different ranks; a call blocking
  // the JavaScript thread on one would keep it from issuing the call its
  // peers wait for on the other.
  bool inlineAlone = false;
};

// Half of what the kernel lets one direction of a loopback or LAN pair buffer
// before the reader drains it: the send buffer (Gloo asks for up to 32 MiB,
// the kernel grants up to twice net.core.wmem_max) plus the receive buffer's
// starting size (the middle of net.ipv4.tcp_rmem). Half, because autotuning
// and other traffic can shrink what is actually free.
size_t syncMessageLimit();

// Sizes at and below which a two-rank all-reduce uses the ring: with two
// ranks it is one exchange each way, and halving-doubling adds a handshake.
constexpr size_t kTwoRankRingMaxBytes = 1024;

// All-gathers over more than 2 ranks whose ring steps are larger stay
// asynchronous: Gloo's synchronous ring stalled for ~40 ms a step with 2 MiB
// steps on 4 ranks (raw Gloo as much as the addon; bench/RESULTS.md), while
// 2 ranks ran 2 and 4 MiB steps at full speed.
constexpr size_t kAllGatherSyncMaxStepBytes = size_t(1) << 20;

// Broadcasts up to this size use synchronous pairs (bench/RESULTS.md: at
// 2 MiB they took 0.56-0.85 of the default mode's time, at 16 MiB 1.3).
constexpr size_t kBroadcastSyncMaxBytes = size_t(4) << 20;

inline bool isPowerOfTwo(int n) { return n > 0 && (n & (n - 1)) == 0; }

// The largest message one rank writes to one peer in a single step.
inline size_t largestStep(GlooAlgo algo, size_t bytes, int worldSize) {
  switch (algo) {
    case GlooAlgo::kSyncRing:
      return (bytes + worldSize - 1) / worldSize;
    case GlooAlgo::kSyncHalvingDoubling:
      // The first exchange moves half; with a world size that is not a power
      // of two, ranks outside the largest binary block hand over everything.
      return isPowerOfTwo(worldSize) ? (bytes + 1) / 2 : bytes;
    default:
      return 0;
  }
}

// The largest all-reduce one synchronous instance may take; larger ones run
// as consecutive chunks of this size (a multiple of `elementBytes`).
inline size_t allReduceChunkBytes(GlooAlgo algo, int worldSize, size_t limit,
                                  size_t elementBytes) {
  size_t chunk = limit;
  if (algo == GlooAlgo::kSyncRing) chunk = limit * size_t(worldSize);
  if (algo == GlooAlgo::kSyncHalvingDoubling && isPowerOfTwo(worldSize)) chunk = 2 * limit;
  chunk -= chunk % elementBytes;
  return chunk < elementBytes ? elementBytes : chunk;
}

inline GlooAlgo chooseAlgorithm(GlooOp op, size_t bytes, int worldSize, const GlooTuning& t) {
  const bool async = t.mode == GlooTuning::Mode::kAsync;
  auto fits = [&](GlooAlgo a) { return largestStep(a, bytes, worldSize) <= t.syncMessageLimit; };
  switch (op) {
    case GlooOp::kAllReduce:
      // Any size: beyond allReduceChunkBytes() it runs in chunks.
      if (async) return GlooAlgo::kAsyncRing;
      if (t.allReduce == GlooTuning::AllReduce::kRing ||
          (t.allReduce == GlooTuning::AllReduce::kAuto && worldSize == 2 &&
           bytes <= kTwoRankRingMaxBytes)) {
        return GlooAlgo::kSyncRing;
      }
      return GlooAlgo::kSyncHalvingDoubling;
    case GlooOp::kReduceScatter:
      // `bytes` is the whole input here.
      return !async && fits(GlooAlgo::kSyncHalvingDoubling) ? GlooAlgo::kSyncHalvingDoubling
                                                             : GlooAlgo::kAsyncAllToAllReduce;
    case GlooOp::kAllGather:
      // `bytes` is the whole output; the ring writes one rank's chunk a step.
      return !async && fits(GlooAlgo::kSyncRing) &&
                     (worldSize == 2 ||
                      largestStep(GlooAlgo::kSyncRing, bytes, worldSize) <= kAllGatherSyncMaxStepBytes)
                 ? GlooAlgo::kSyncRing
                 : GlooAlgo::kAsync;
    case GlooOp::kBroadcast:
      // Safe at any size (only the root writes; every other rank reads), but
      // above kBroadcastSyncMaxBytes the root's one thread writing to each
      // peer in turn loses to the loop thread's overlapped writes.
      return !async && bytes <= kBroadcastSyncMaxBytes ? GlooAlgo::kSyncOneToAll : GlooAlgo::kAsync;
    case GlooOp::kBarrier:
      return async ? GlooAlgo::kAsync : GlooAlgo::kSyncAllToOne;
    case GlooOp::kReduce:
    case GlooOp::kAllToAll:
      return GlooAlgo::kAsync;
  }
  return GlooAlgo::kAsync;
}

inline const char* algorithmName(GlooAlgo a) {
  switch (a) {
    case GlooAlgo::kAsyncRing: return "async ring";
    case GlooAlgo::kAsyncAllToAllReduce: return "async alltoall+reduce";
    case GlooAlgo::kAsync: return "async";
    case GlooAlgo::kSyncRing: return "sync ring";
    case GlooAlgo::kSyncHalvingDoubling: return "sync halving-doubling";
    case GlooAlgo::kSyncOneToAll: return "sync one-to-all";
    case GlooAlgo::kSyncAllToOne: return "sync all-to-one";
  }
  return "unknown";
}

inline bool isSync(GlooAlgo a) {
  return a == GlooAlgo::kSyncRing || a == GlooAlgo::kSyncHalvingDoubling ||
         a == GlooAlgo::kSyncOneToAll || a == GlooAlgo::kSyncAllToOne;
}

}  // namespace collectives
