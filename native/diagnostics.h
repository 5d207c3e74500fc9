// What a communicator adds around every operation so that a failure says
// why: the lost peer's rank instead of only its address, and (in
// COLLECTIVES_DEBUG=detail mode) a fingerprint exchange that catches ranks
// calling different collectives before any data moves.
//
// Lifecycle: created with its communicator on the JS thread; `guard` runs
// there at issue time and wraps the work's `run`, which then executes on the
// queue thread in issue order; `learnPeers` runs on the queue thread once the
// backend has connected. The peer table is written once under a mutex and
// read by the queue and waiter threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <gloo/rendezvous/store.h>

#include "call_kind.h"
#include "work.h"

namespace collectives {

// What one rank asked for; compared across ranks in detail mode.
struct CallSignature {
  CallKind kind;
  DType dtype = DType::kUint8;
  bool hasDtype = false;
  uint64_t count = 0;  // elements (per rank where the operation says so)
  int32_t root = -1;   // broadcast/reduce root; peer for send/recv
  int32_t redOp = -1;  // RedOp, or -1 for none
  bool device = false;  // on DeviceBuffers (NCCL) rather than host arrays (Gloo)
  int32_t format = -1;  // quantized calls: quant::Format
  uint32_t blockSize = 0;
};

class Diagnostics : public std::enable_shared_from_this<Diagnostics> {
 public:
  Diagnostics(int rank, int size, bool detail, std::string prefix,
              std::shared_ptr<gloo::rendezvous::Store> store)
      : rank_(rank), size_(size), detail_(detail), prefix_(std::move(prefix)),
        store_(std::move(store)) {}

  // JS thread, in issue order. Numbers the call and wraps `work.run`: the
  // fingerprint exchange (detail mode) runs first on the queue thread, and a
  // PEER_LOST failure is given the lost rank when its address is known.
  void guard(Work& work, const CallSignature& sig, Millis timeout);

  // Queue thread, once the backend is connected: maps the addresses each
  // rank published for its Gloo pairs to that rank. Failures leave the table
  // empty (failures are then reported by address only). `syncPairs`: the
  // backend also connected a context of synchronous pairs.
  void learnPeers(bool syncPairs);
  // For engines whose failures name ranks rather than addresses (MPI's say
  // "(MPI rank 3)"): a PEER_LOST is then given that rank too.
  void learnRankNames();
  void setStore(std::shared_ptr<gloo::rendezvous::Store> store) { store_ = std::move(store); }

  // The diagnostics of a communicator split off this one under `key`.
  std::shared_ptr<Diagnostics> child(int rank, int size, const std::string& key) const {
    return std::make_shared<Diagnostics>(rank, size, detail_, prefix_ + "/" + key, store_);
  }

  // Text of one call, e.g. "allReduce(float32 × 1024, sum) #17".
  static std::string describe(const CallSignature& sig, uint64_t seq);

 private:
  void exchange(Backend& backend, const CallSignature& sig, uint64_t seq, Millis timeout);
  // The rank whose address appears in `message`, or -1.
  int peerIn(const std::string& message);

  int rank_;
  int size_;
  bool detail_;
  std::string prefix_;
  std::shared_ptr<gloo::rendezvous::Store> store_;
  uint64_t seq_ = 0;  // JS thread

  std::mutex mu_;
  std::map<std::string, int> peers_;  // "[ip]:port" as Gloo prints it -> rank
};

}  // namespace collectives
