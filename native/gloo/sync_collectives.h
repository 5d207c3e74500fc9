// Collectives over a Gloo context whose pairs are in synchronous mode: the
// calling thread sends and receives itself, with no hand-off to Gloo's loop
// thread. Uses Gloo's algorithm classes, which bind their buffers when
// constructed; small operations reuse a constructed instance over scratch
// buffers (copying a few KiB costs less than building the instance), large
// ones run on the caller's memory.
#pragma once

#include <list>
#include <memory>
#include <vector>

#include <gloo/algorithm.h>
#include <gloo/context.h>

#include "../dtype.h"
#include "algorithm_policy.h"

namespace collectives {

class SyncCollectives {
 public:
  explicit SyncCollectives(std::shared_ptr<gloo::Context> context);

  // No half dtypes and no AVG: the backend widens and divides. `in` may equal
  // `out`. Runs as consecutive instances of at most `chunkBytes` bytes.
  void allReduce(GlooAlgo algo, const void* in, void* out, size_t count, DType dtype,
                 RedOp op, size_t chunkBytes);
  // in: size * countPerRank elements (left unchanged); out: countPerRank.
  void reduceScatter(const void* in, void* out, size_t countPerRank, DType dtype, RedOp op);
  // in: chunkBytes; out: size * chunkBytes. `in` may be this rank's chunk of `out`.
  void allGather(const void* in, void* out, size_t chunkBytes);
  void broadcast(void* data, size_t bytes, int root);
  void barrier();

 private:
  struct Key {
    int op;
    int algo;
    int dtype;
    int redop;
    int root;
    size_t count;
    bool operator==(const Key& o) const {
      return op == o.op && algo == o.algo && dtype == o.dtype && redop == o.redop &&
             root == o.root && count == o.count;
    }
  };
  struct Entry {
    Key key;
    size_t footprint = 0;  // bytes held: scratch plus the instance's own buffers
    std::vector<char> in;   // scratch the instance reads
    std::vector<char> out;  // scratch it writes (empty when it works in place)
    std::unique_ptr<gloo::Algorithm> algorithm;
  };

  // A cached instance for `key`, built by `make` over fresh scratch on a miss.
  // Every rank issues the same operations in the same order, so hits, misses
  // and evictions (which consume Gloo slots) stay in step across ranks.
  template <typename Make>
  Entry& cached(const Key& key, size_t inBytes, size_t outBytes, size_t instanceBytes,
                Make&& make);

  std::shared_ptr<gloo::Context> context_;
  std::list<Entry> cache_;
  size_t cachedBytes_ = 0;
};

// Operations of at most this many bytes run on cached instances.
constexpr size_t kSyncCacheMaxBytes = 256 * 1024;
// Reduce-scatter works on a copy of its input anyway, and building its
// instance allocates two more buffers of the whole input (measured: 0.4 ms at
// 1 MiB, 1.7 ms at 4 MiB on a 2-core VM), so it is cached at any size.
constexpr size_t kSyncReduceScatterCacheMaxBytes = size_t(64) << 20;
constexpr size_t kSyncCacheEntries = 32;
// Least recently used entries go once the cache holds more than this.
constexpr size_t kSyncCacheMaxFootprint = size_t(256) << 20;

}  // namespace collectives
