// Backend over Open MPI for host memory: on one host its shared-memory
// transport moves a message with one or two copies instead of TCP loopback's
// several. Every operation is a non-blocking MPI call (MPI_Iallreduce, ...)
// tested on the calling thread until it completes, under the runtime's lock
// (mpi_runtime.h), so that a deadline and a dead peer end it instead of a
// hang:
//   - past its timeout it fails with TIMEOUT; MPI cannot cancel a collective,
//     so the request is left behind and MPI is not finalized at exit;
//   - while it waits, the ranks on this host are checked every 100 ms: one
//     whose process has exited fails it with PEER_LOST naming the rank (MPI
//     itself reports nothing until its launcher ends the job; a rank on
//     another host is noticed only through the timeout, or when mpirun
//     kills the job);
//   - MPI's own errors come back as codes (MPI_ERRORS_RETURN): a truncated
//     message (ranks passed different counts) is MISMATCH.
// Half types: see allReduce in mpi_backend.cc.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "../backend.h"
#include "mpi/mpi_api.h"

namespace collectives {
namespace mpi {

// Who the ranks of one communicator are, for the liveness checks.
struct MpiPeers {
  std::vector<int> pids;
  std::vector<char> local;  // shares this rank's host (and process namespace)
  // The lowest rank other than `self` whose process ran on this host and has
  // exited, or -1.
  int firstExited(int self) const;
  MpiPeers subset(const std::vector<int>& parentRanks) const;
};

class MpiBackend : public Backend, public std::enable_shared_from_this<MpiBackend> {
 public:
  // A communicator of its own over MPI_COMM_WORLD (a duplicate, so that its
  // messages never meet anyone else's). `rank` and `size` are what the
  // launcher's environment said; they must be MPI's.
  static std::shared_ptr<MpiBackend> connect(int rank, int size, Millis timeout);
  ~MpiBackend() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allReduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                 Millis timeout) override;
  void reduceScatter(const void* in, void* out, size_t countPerRank, DType dtype,
                     RedOp op, Millis timeout) override;
  void allGather(const void* in, void* out, size_t countPerRank, DType dtype,
                 Millis timeout) override;
  void broadcast(void* data, size_t count, DType dtype, int root, Millis timeout) override;
  void reduce(const void* in, void* out, size_t count, DType dtype, RedOp op, int root,
              Millis timeout) override;
  void barrier(Millis timeout) override;
  void allToAll(const void* in, void* out, size_t countPerRank, DType dtype,
                Millis timeout) override;
  void allToAllV(const void* in, const std::vector<int64_t>& inCounts, void* out,
                 const std::vector<int64_t>& outCounts, DType dtype, Millis timeout) override;
  std::unique_ptr<PendingTransfer> postSend(const void* data, size_t bytes, int peer,
                                            uint32_t tag) override;
  std::unique_ptr<PendingTransfer> postRecv(void* data, size_t bytes, int peer,
                                            uint32_t tag) override;
  // MPI needs the members' ranks (splitRanks); a split without them is a bug.
  std::shared_ptr<Backend> split(int newRank, int newSize, const std::string& key,
                                 Millis timeout) override;
  // MPI_Comm_create_group over `parentRanks`: only the members call it, as
  // only the members call split (MPI_Comm_split would need every rank of the
  // parent, those outside every group too). The group is the one
  // MPI_Comm_split would make.
  std::shared_ptr<Backend> splitRanks(const std::vector<int>& parentRanks, int newRank,
                                      const std::string& key, Millis timeout) override;

 private:
  MpiBackend(MPI_Comm comm, int rank, int size, std::shared_ptr<const MpiPeers> peers);

  // Tests `request` until it completes, `timeout` passes or a peer on this
  // host exits; `peer` >= 0 watches only that one.
  void await(MPI_Request& request, const char* operation, Millis timeout, int peer = -1);
  // One point-to-point transfer posted (MPI_Isend or MPI_Irecv), awaited later by its waiter.
  std::unique_ptr<PendingTransfer> post(bool send, void* data, size_t bytes, int peer, uint32_t tag);
  // Throws the failure for an MPI call's return code.
  void check(int rc, const char* call, const char* operation) const;
  // Half types combined with the engine's pair op on 16-bit data (exact
  // with two ranks, and for min/max), or else widened to float32 first.
  bool pairOp(DType dtype, RedOp op) const;
  char* scratch(size_t bytes);
  // All-reduce of large messages as a ring (reduce-scatter, then all-gather)
  // of point-to-point transfers on ring_: Open MPI's non-blocking all-reduce
  // (libnbc) reaches about half the bandwidth of its blocking one on one
  // host, while its sends move a large message with one copy between the
  // processes (CMA).
  void ringAllReduce(const void* in, void* out, size_t count, DType dtype, RedOp op,
                     Millis timeout);
  // A second duplicate of the communicator for ringAllReduce's transfers,
  // so that they never meet the user's send/recv tags.
  void openRing(Millis timeout);
  void checkAllToAllSizes(const char* operation, const std::vector<int64_t>& inCounts,
                          const std::vector<int64_t>& outCounts, DType dtype, Millis timeout);

  MPI_Comm comm_;
  MPI_Comm ring_ = nullptr;
  int rank_;
  int size_;
  std::shared_ptr<const MpiPeers> peers_;
  // Set once a request on this communicator was left behind: it may still
  // use the communicator, which is therefore never freed.
  std::atomic<bool> abandoned_{false};
  std::vector<char> scratch_;
};

}  // namespace mpi
}  // namespace collectives
