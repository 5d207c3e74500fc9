// The per-communicator queue: a thread that runs operations one at a time in
// issue order, two threads that await, each in that order, what they left
// pending (posted point-to-point transfers; device work on a CUDA stream),
// and a thread-safe function that hands finished work back to the JS thread.
// The JS thread owns `pending_` and the thread-safe function's ref count, so
// an idle communicator never keeps the process alive.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include <napi.h>

#include "work.h"

namespace collectives {

class WorkQueue : public std::enable_shared_from_this<WorkQueue> {
 public:
  static std::shared_ptr<WorkQueue> create(Napi::Env env,
                                           std::shared_ptr<Backend> backend);
  ~WorkQueue();

  // JS thread. Takes ownership; returns the work's promise.
  Napi::Promise push(Napi::Env env, std::unique_ptr<Work> work);
  // JS thread. Fails queued and running work with ABORTED at once and lets
  // the threads finish on their own.
  void abort(Napi::Env env, const std::string& reason);
  // JS thread. Stops idle threads and releases the backend. Requires no
  // pending work (the caller waits for it first).
  void close();
  // Environment teardown: no JS may run any more.
  void teardown();

  size_t pending() const { return pending_; }
  bool closed() const { return closed_; }
  // JS thread. True when the queue is open and every work issued on it has
  // settled: nothing is queued, running, or awaited in a lane (pending_
  // drops only when the JS thread settles a work, after its thread let go).
  // A call made now cannot overtake anything, so it may run inline.
  bool idle() const { return pending_ == 0 && !closed_ && !aborted_; }
  // JS thread, only when idle(): the backend, for the caller to ask how it
  // would run a call (null before init has connected).
  Backend* idleBackend();
  // JS thread, only when idle(): runs `work` on the calling thread as the
  // queue thread would run it (the same broken-communicator check, failure
  // capture and breakOn, so the outcome is the same) and returns its
  // promise, already settled. The queue thread stays asleep meanwhile, so
  // the two never use the backend at once.
  Napi::Promise runInline(Napi::Env env, std::unique_ptr<Work> work);
  // JS thread. After abort the queue thread may still be inside the work it
  // was running.
  bool aborted() const { return aborted_; }

 private:
  WorkQueue() = default;
  void start(Napi::Env env, std::shared_ptr<Backend> backend);
  void runLoop();
  void waitLoop(int lane);
  void handOff(Work* work);
  static void finish(Napi::Env env, Napi::Function, Work* work);
  void settle(Napi::Env env, Work& work);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work*> queue_;
  Work* running_ = nullptr;
  // What operations left pending, awaited in issue order by one thread per
  // lane (Work::lane): Gloo's point-to-point transfers, and device work on
  // the NCCL stream. Two lanes, so that a receive waiting for a slow peer
  // never holds back the completion of device work, nor the reverse.
  struct Lane {
    std::condition_variable cv;
    std::deque<Work*> items;
    Work* awaiting = nullptr;
    std::thread thread;
  };
  Lane lanes_[kWorkLanes];
  bool stopping_ = false;
  // Set by the first TIMEOUT or PEER_LOST: Gloo closes the pairs of a call
  // that timed out, and a lost peer leaves the others out of step, so every
  // later operation fails at once with ABORTED and this reason instead of
  // reaching Gloo.
  std::string broken_;
  // Set at environment teardown for threads that could not be joined: from
  // then on they must not touch the thread-safe function, and they leave
  // Gloo's objects for the exiting process instead of tearing them down
  // while it unloads.
  bool envGone_ = false;

  std::shared_ptr<Backend> backend_;  // queue thread only while it runs
  std::thread runner_;
  Napi::ThreadSafeFunction tsfn_;

  void breakOn(const Work& work);

  // JS thread only.
  uint64_t issued_ = 0;
  size_t pending_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
};

}  // namespace collectives
