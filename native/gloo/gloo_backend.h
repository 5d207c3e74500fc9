// Backend over Gloo's TCP transport for host memory. Two contexts share one
// TCP device: one with synchronous pairs, driven by the queue thread itself
// through Gloo's algorithm classes (SyncCollectives), and one in Gloo's
// default asynchronous mode for the unbound-buffer functions (all-to-all,
// reduce, point-to-point), which refuse synchronous pairs. algorithm_policy.h
// picks per operation and size. Reduce-scatter moves (n-1)/n of the data per
// rank either way (halving-doubling, or all-to-all plus a local reduce); an
// all-reduce followed by a copy would move twice that.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gloo/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/device.h>

#include "../backend.h"
#include "../call_kind.h"
#include "algorithm_policy.h"
#include "sync_collectives.h"

namespace collectives {

struct GlooConnectOptions {
  int rank = 0;
  int size = 1;
  std::shared_ptr<gloo::rendezvous::Store> store;
  std::string prefix;    // rendezvous namespace of this communicator
  std::string hostname;  // address this rank listens on (empty: use iface)
  std::string iface;     // network interface name, used when set
  Millis timeout{600000};
  GlooTuning tuning;
};

class GlooBackend : public Backend {
 public:
  // Creates the TCP device and connects the full mesh through the store.
  static std::shared_ptr<GlooBackend> connect(const GlooConnectOptions& options);

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allReduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                 Millis timeout) override;
  void reduceScatter(const void* in, void* out, size_t countPerRank, DType dtype,
                     RedOp op, Millis timeout) override;
  void allGather(const void* in, void* out, size_t countPerRank, DType dtype,
                 Millis timeout) override;
  void broadcast(void* data, size_t count, DType dtype, int root,
                 Millis timeout) override;
  void reduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
              int root, Millis timeout) override;
  void barrier(Millis timeout) override;
  void allToAll(const void* in, void* out, size_t countPerRank, DType dtype,
                Millis timeout) override;
  void allToAllV(const void* in, const std::vector<int64_t>& inCounts, void* out,
                 const std::vector<int64_t>& outCounts, DType dtype,
                 Millis timeout) override;
  std::unique_ptr<PendingTransfer> postSend(const void* data, size_t bytes,
                                            int peer, uint32_t tag) override;
  std::unique_ptr<PendingTransfer> postRecv(void* data, size_t bytes, int peer,
                                            uint32_t tag) override;
  std::shared_ptr<Backend> split(int newRank, int newSize, const std::string& key,
                                 Millis timeout) override;
  // The algorithm a backend with `tuning` over `size` ranks uses for `kind`
  // on `bytes` bytes at the default timeout, as benchmarks report it; empty
  // for a kind that has no such choice.
  static std::string describe(const GlooTuning& tuning, int size, CallKind kind, size_t bytes);
  // Whether a call of `kind` (`bytes` as describe() counts them, `count`
  // elements) with `timeout` would run on the synchronous pairs: then the
  // calling thread does all of it, with no hand-off to Gloo's loop thread,
  // and it may be the JavaScript thread (the communicator's inline path).
  bool runsOnCaller(CallKind kind, size_t bytes, size_t count, Millis timeout) const;

 private:
  GlooBackend(GlooConnectOptions options,
              std::shared_ptr<gloo::transport::Device> device,
              std::shared_ptr<gloo::Context> context,
              std::shared_ptr<gloo::Context> syncContext);
  static std::shared_ptr<GlooBackend> create(const GlooConnectOptions& options,
                                             std::shared_ptr<gloo::transport::Device> device);

  // The algorithm for this call: the policy's choice, unless the synchronous
  // context cannot serve it (no such context, a count beyond Gloo's int, or a
  // per-call timeout other than the one the synchronous pairs were built with).
  GlooAlgo pick(GlooOp op, size_t bytes, size_t count, Millis timeout) const;
  static GlooAlgo pickFor(const GlooTuning& tuning, int size, bool haveSync, GlooOp op,
                          size_t bytes, size_t count, bool defaultTimeout);

  // Gloo's tags must be unique among concurrent operations; this backend
  // runs one at a time, so a counter is enough.
  uint32_t nextTag() { return tag_++; }

  // Reduce-scatter on the asynchronous pairs: each rank's blocks travel in
  // pieces and every piece is reduced as soon as it has arrived.
  void reduceScatterPipelined(const void* in, void* out, size_t countPerRank, DType dtype,
                              RedOp op, Millis timeout);
  void reduceScatterSync(const void* in, void* out, size_t countPerRank, DType dtype,
                         RedOp op);
  // MISMATCH unless what each rank sends every other is what that one expects.
  void checkAllToAllSizes(const char* operation, const std::vector<int64_t>& inBytes,
                          const std::vector<int64_t>& outBytes, Millis timeout);
  void allReduceSameType(const void* in, void* out, size_t count, DType dtype,
                         RedOp op, Millis timeout);

  GlooConnectOptions options_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  std::shared_ptr<gloo::Context> syncContext_;
  std::unique_ptr<SyncCollectives> sync_;
  // The all-to-all reduce-scatter's receive buffer, as large as the largest call.
  std::vector<char> gathered_;
  int rank_;
  int size_;
  uint32_t tag_ = 0;
};

// Runs `fn`, turning Gloo's exceptions into CollectiveFailure with a code.
void translateGlooErrors(const char* operation, const std::function<void()>& fn);

}  // namespace collectives
