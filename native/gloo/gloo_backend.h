// Backend over Gloo's TCP transport for host memory. Collectives use Gloo's
// unbound-buffer functions; reduce-scatter is Gloo's all-to-all plus a local
// reduce, which moves (n-1)/n of the data per rank like a ring (an all-reduce
// followed by a copy would move twice that).
#pragma once

#include <memory>
#include <string>

#include <gloo/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/device.h>

#include "../backend.h"

namespace collectives {

struct GlooConnectOptions {
  int rank = 0;
  int size = 1;
  std::shared_ptr<gloo::rendezvous::Store> store;
  std::string prefix;    // rendezvous namespace of this communicator
  std::string hostname;  // address this rank listens on (empty: use iface)
  std::string iface;     // network interface name, used when set
  Millis timeout{600000};
};

class GlooBackend : public Backend {
 public:
  // Creates the TCP device and connects the full mesh through the store.
  static std::shared_ptr<GlooBackend> connect(const GlooConnectOptions& options);

  const char* name() const override { return "gloo"; }
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

 private:
  GlooBackend(GlooConnectOptions options,
              std::shared_ptr<gloo::transport::Device> device,
              std::shared_ptr<gloo::Context> context);

  // Gloo's tags must be unique among concurrent operations; this backend
  // runs one at a time, so a counter is enough.
  uint32_t nextTag() { return tag_++; }

  void allReduceSameType(const void* in, void* out, size_t count, DType dtype,
                         RedOp op, Millis timeout);

  GlooConnectOptions options_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  int rank_;
  int size_;
  uint32_t tag_ = 0;
};

// Runs `fn`, turning Gloo's exceptions into CollectiveFailure with a code.
void translateGlooErrors(const char* operation, const std::function<void()>& fn);

}  // namespace collectives
