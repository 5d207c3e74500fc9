// Raw Gloo, called from C++: the baseline the addon's overhead is measured
// against. Every rank is its own process (started by bench/overhead.js), the
// ranks meet through Gloo's FileStore, and each timed call runs back to back
// on the calling thread, exactly as the addon's queue thread runs them.
//
//   RANK=r WORLD_SIZE=n gloo-reference --store DIR --op all_reduce
//       --mode sync-hd --sizes 8,4096 --iters 1000,1000 [--busy-poll 1]
//       [--chunk-bytes N]
//
// Rank 0 prints one line per size: "<bytes> <microseconds per call>".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gloo/allgather.h>
#include <gloo/allgather_ring.h>
#include <gloo/allreduce.h>
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/allreduce_ring.h>
#include <gloo/alltoall.h>
#include <gloo/barrier.h>
#include <gloo/barrier_all_to_one.h>
#include <gloo/broadcast.h>
#include <gloo/broadcast_one_to_all.h>
#include <gloo/reduce_scatter.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

namespace {

struct Args {
  std::string store;
  std::string op = "all_reduce";
  std::string mode = "async-ring";
  std::vector<size_t> sizes;
  std::vector<int> iters;
  int warmup = 5;
  bool busyPoll = false;
  size_t chunkBytes = 0;  // all-reduce on synchronous pairs: instances of at most this size
};

template <typename T>
std::vector<T> splitList(const std::string& s) {
  std::vector<T> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(T(std::stoll(item)));
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--store") a.store = v;
    else if (k == "--op") a.op = v;
    else if (k == "--mode") a.mode = v;
    else if (k == "--sizes") a.sizes = splitList<size_t>(v);
    else if (k == "--iters") a.iters = splitList<int>(v);
    else if (k == "--warmup") a.warmup = std::stoi(v);
    else if (k == "--busy-poll") a.busyPoll = v == "1";
    else if (k == "--chunk-bytes") a.chunkBytes = size_t(std::stoll(v));
    else {
      std::fprintf(stderr, "gloo-reference: unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.store.empty() || a.sizes.empty() || a.iters.size() != a.sizes.size()) {
    std::fprintf(stderr, "gloo-reference: --store, --sizes and as many --iters are required\n");
    std::exit(2);
  }
  return a;
}

int envInt(const char* name) {
  const char* v = std::getenv(name);
  if (!v) {
    std::fprintf(stderr, "gloo-reference: %s is not set\n", name);
    std::exit(2);
  }
  return std::atoi(v);
}

std::shared_ptr<gloo::Context> connect(int rank, int size, gloo::rendezvous::Store& store,
                                       const std::string& prefix,
                                       const std::shared_ptr<gloo::transport::Device>& device) {
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  context->setTimeout(std::chrono::seconds(120));
  gloo::rendezvous::PrefixStore scoped(prefix, store);
  context->connectFullMesh(scoped, const_cast<std::shared_ptr<gloo::transport::Device>&>(device));
  return context;
}

// One timed operation over float32 buffers of `bytes` (the nccl-tests size).
class Op {
 public:
  Op(const Args& a, std::shared_ptr<gloo::Context> async,
     std::shared_ptr<gloo::Context> sync, size_t bytes)
      : a_(a), async_(std::move(async)), sync_(std::move(sync)) {
    const int n = async_->size;
    count_ = bytes / sizeof(float);
    in_.assign(count_, 1.0f);
    out_.assign(count_, 0.0f);
    if (a.op == "reduce_scatter") {
      // Per-rank output of count/n; the Gloo class reduces in place.
      perRank_ = count_ / n;
      in_.assign(perRank_ * n, 1.0f);
      out_.assign(perRank_ * n, 0.0f);
      if (a.mode == "sync-hd") {
        std::vector<int> recv(n, int(perRank_));
        rsHd_.reset(new gloo::ReduceScatterHalvingDoubling<float>(
            sync_, {in_.data()}, int(perRank_ * n), recv));
      }
    } else if (a.op == "all_gather") {
      perRank_ = count_ / n;
      in_.assign(perRank_, 1.0f);
      out_.assign(perRank_ * n, 0.0f);
      if (a.mode == "sync-ring") {
        agRing_.reset(new gloo::AllgatherRing<float>(sync_, {in_.data()}, out_.data(),
                                                     int(perRank_)));
      }
    } else if (a.op == "alltoall") {
      perRank_ = count_ / n;
      in_.assign(perRank_ * n, 1.0f);
      out_.assign(perRank_ * n, 0.0f);
    } else if (a.op == "all_reduce" && a.mode.rfind("sync", 0) == 0) {
      const size_t chunk = a.chunkBytes ? a.chunkBytes / sizeof(float) : count_;
      for (size_t first = 0; first < count_; first += chunk) {
        std::vector<float*> ptrs{out_.data() + first};
        const int n = int(std::min(chunk, count_ - first));
        if (a.mode == "sync-hd") {
          arSync_.emplace_back(new gloo::AllreduceHalvingDoubling<float>(sync_, ptrs, n));
        } else {
          arSync_.emplace_back(new gloo::AllreduceRing<float>(sync_, ptrs, n));
        }
      }
    } else if (a.op == "broadcast") {
      if (a.mode == "sync") {
        bcast_.reset(new gloo::BroadcastOneToAll<float>(sync_, {out_.data()}, count_, 0));
      }
    } else if (a.op == "barrier") {
      if (a.mode == "sync") barrier_.reset(new gloo::BarrierAllToOne(sync_));
    }
  }

  void run() {
    const std::string& op = a_.op;
    const std::string& mode = a_.mode;
    if (op == "all_reduce") {
      if (!arSync_.empty()) {
        for (auto& instance : arSync_) instance->run();
      } else {
        gloo::AllreduceOptions o(async_);
        o.setInput(in_.data(), count_);
        o.setOutput(out_.data(), count_);
        o.setReduceFunction(reduceSum);
        o.setAlgorithm(mode == "async-bcube" ? gloo::AllreduceOptions::Algorithm::BCUBE
                                             : gloo::AllreduceOptions::Algorithm::RING);
        o.setTag(tag_++);
        gloo::allreduce(o);
      }
    } else if (op == "reduce_scatter") {
      if (rsHd_) {
        rsHd_->run();
        return;
      }
      // All-to-all, then a local reduce of the n received chunks.
      const int n = async_->size;
      gloo::AlltoallOptions o(async_);
      o.setInput(in_.data(), perRank_ * n);
      o.setOutput(out_.data(), perRank_ * n);
      o.setTag(tag_++);
      gloo::alltoall(o);
      for (int r = 1; r < n; r++) {
        float* acc = out_.data();
        const float* part = out_.data() + size_t(r) * perRank_;
        for (size_t i = 0; i < perRank_; i++) acc[i] += part[i];
      }
    } else if (op == "all_gather") {
      if (agRing_) {
        agRing_->run();
        return;
      }
      gloo::AllgatherOptions o(async_);
      o.setInput(in_.data(), perRank_);
      o.setOutput(out_.data(), perRank_ * async_->size);
      o.setTag(tag_++);
      gloo::allgather(o);
    } else if (op == "alltoall") {
      gloo::AlltoallOptions o(async_);
      o.setInput(in_.data(), in_.size());
      o.setOutput(out_.data(), out_.size());
      o.setTag(tag_++);
      gloo::alltoall(o);
    } else if (op == "broadcast") {
      if (bcast_) {
        bcast_->run();
        return;
      }
      gloo::BroadcastOptions o(async_);
      o.setOutput(out_.data(), count_);
      o.setRoot(0);
      o.setTag(tag_++);
      gloo::broadcast(o);
    } else if (op == "barrier") {
      if (barrier_) {
        barrier_->run();
        return;
      }
      gloo::BarrierOptions o(async_);
      o.setTag(tag_++);
      gloo::barrier(o);
    } else {
      std::fprintf(stderr, "gloo-reference: unknown op %s\n", op.c_str());
      std::exit(2);
    }
  }

 private:
  static void reduceSum(void* c, const void* a, const void* b, size_t n) {
    float* o = static_cast<float*>(c);
    const float* x = static_cast<const float*>(a);
    const float* y = static_cast<const float*>(b);
    for (size_t i = 0; i < n; i++) o[i] = x[i] + y[i];
  }

  const Args& a_;
  std::shared_ptr<gloo::Context> async_, sync_;
  size_t count_ = 0, perRank_ = 0;
  std::vector<float> in_, out_;
  uint32_t tag_ = 0;
  std::vector<std::unique_ptr<gloo::Algorithm>> arSync_;
  std::unique_ptr<gloo::ReduceScatterHalvingDoubling<float>> rsHd_;
  std::unique_ptr<gloo::AllgatherRing<float>> agRing_;
  std::unique_ptr<gloo::BroadcastOneToAll<float>> bcast_;
  std::unique_ptr<gloo::BarrierAllToOne> barrier_;
};

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  const int rank = envInt("RANK");
  const int size = envInt("WORLD_SIZE");
  gloo::rendezvous::FileStore store(a.store);
  gloo::transport::tcp::attr attr("127.0.0.1");
  auto device = gloo::transport::tcp::CreateDevice(attr);
  auto async = connect(rank, size, store, "async", device);
  std::shared_ptr<gloo::Context> sync;
  if (a.mode.rfind("sync", 0) == 0) {
    sync = connect(rank, size, store, "sync", device);
    for (int r = 0; r < size; r++) {
      if (r != rank) sync->getPair(r)->setSync(true, a.busyPoll);
    }
  }
  for (size_t s = 0; s < a.sizes.size(); s++) {
    Op op(a, async, sync, a.sizes[s]);
    for (int i = 0; i < a.warmup; i++) op.run();
    gloo::BarrierOptions b(async);
    b.setTag(0x7fffffff);
    gloo::barrier(b);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < a.iters[s]; i++) op.run();
    auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                  .count() / a.iters[s];
    if (rank == 0) {
      std::printf("%zu %.2f\n", a.sizes[s], us);
      std::fflush(stdout);
    }
  }
  return 0;
}
