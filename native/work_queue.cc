#include "work_queue.h"

#include <cstring>

#include "errors.h"

namespace collectives {

void rejectWork(Napi::Env env, Work& work, const std::string& code,
                const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("operation", Napi::String::New(env, work.operation));
  if (work.peerRank >= 0) error.Set("peerRank", Napi::Number::New(env, work.peerRank));
  work.deferred.Reject(error.Value());
}

namespace {

// Worker threads never let an exception escape: it becomes the work's outcome.
template <typename F>
void runCaptured(Work& work, F&& fn) {
  try {
    fn();
  } catch (const CollectiveFailure& e) {
    work.fail(e.code(), e.what());
  } catch (const std::exception& e) {
    work.fail(codes::kInternal, e.what());
  }
}

}  // namespace

std::shared_ptr<WorkQueue> WorkQueue::create(Napi::Env env,
                                             std::shared_ptr<Backend> backend) {
  std::shared_ptr<WorkQueue> queue(new WorkQueue());
  queue->start(env, std::move(backend));
  return queue;
}

void WorkQueue::start(Napi::Env env, std::shared_ptr<Backend> backend) {
  backend_ = std::move(backend);
  // Users of the function: the runner and one waiter per lane. Each releases
  // it when its loop ends, and the function is finalized after the last one.
  tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                        "collectives", 0, 1 + kWorkLanes);
  tsfn_.Unref(env);
  auto self = shared_from_this();
  runner_ = std::thread([self] { self->runLoop(); });
  for (int l = 0; l < kWorkLanes; l++) lanes_[l].thread = std::thread([self, l] { self->waitLoop(l); });
}

WorkQueue::~WorkQueue() {
  if (runner_.joinable()) runner_.detach();
  for (Lane& lane : lanes_) {
    if (lane.thread.joinable()) lane.thread.detach();
  }
}

Napi::Promise WorkQueue::push(Napi::Env env, std::unique_ptr<Work> work) {
  Napi::Promise promise = work->deferred.Promise();
  if (closed_ || aborted_) {
    rejectWork(env, *work, aborted_ ? codes::kAborted : codes::kDestroyed,
               std::string(work->operation) + ": the communicator was " +
                   (aborted_ ? "aborted" : "destroyed"));
    return promise;
  }
  work->owner = shared_from_this();
  if (std::strcmp(work->operation, "init") != 0) work->index = ++issued_;
  if (pending_++ == 0 && work->holdsProcess) tsfn_.Ref(env);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(work.release());
  }
  cv_.notify_one();
  return promise;
}

Backend* WorkQueue::idleBackend() {
  std::lock_guard<std::mutex> lock(mu_);
  return backend_.get();
}

Napi::Promise WorkQueue::runInline(Napi::Env env, std::unique_ptr<Work> work) {
  Napi::Promise promise = work->deferred.Promise();
  work->index = ++issued_;
  std::string broken;
  std::shared_ptr<Backend> backend;
  {
    // The queue thread wrote both before it last let go of mu_; taking the
    // lock makes its writes (and the backend's state) visible here.
    std::lock_guard<std::mutex> lock(mu_);
    broken = broken_;
    backend = backend_;
  }
  if (broken.empty()) {
    runCaptured(*work, [&] {
      if (work->run) work->run(backend);
    });
  } else {
    work->fail(codes::kAborted, std::string(work->operation) + ": " + broken);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    breakOn(*work);
  }
  // Never counted in pending_, so settling leaves the count and the
  // thread-safe function's reference alone.
  settle(env, *work);
  return promise;
}

void WorkQueue::runLoop() {
  for (;;) {
    Work* work = nullptr;
    std::string broken;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;
      work = queue_.front();
      queue_.pop_front();
      running_ = work;
      broken = broken_;
    }
    // Device work has its own recovery (a failed NCCL call aborts the NCCL communicator and
    // the next device call joins a fresh one), so only host work is refused once Gloo broke.
    if (broken.empty() || work->lane == kDeviceLane) {
      runCaptured(*work, [&] {
        if (work->run) work->run(backend_);
      });
    } else {
      work->fail(codes::kAborted, std::string(work->operation) + ": " + broken);
    }
    int lane = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_ = nullptr;
      breakOn(*work);
      if (work->transfer && !work->failed) {
        lane = work->lane;
        lanes_[lane].items.push_back(work);
        work = nullptr;
      }
    }
    if (work) {
      handOff(work);
    } else {
      lanes_[lane].cv.notify_one();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (envGone_) {
    new std::shared_ptr<Backend>(std::move(backend_));  // see envGone_
    return;
  }
  // The backend may be the last reference to Gloo's context: drop it here so
  // that an aborted queue does not tear Gloo down on the JS thread.
  backend_.reset();
  tsfn_.Release();
}

void WorkQueue::waitLoop(int l) {
  Lane& lane = lanes_[l];
  for (;;) {
    Work* work = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      lane.cv.wait(lock, [&] { return stopping_ || !lane.items.empty(); });
      if (lane.items.empty()) break;
      work = lane.items.front();
      lane.items.pop_front();
      lane.awaiting = work;
    }
    runCaptured(*work, [&] { work->transfer->wait(work->transferTimeout); });
    work->transfer.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      lane.awaiting = nullptr;
      breakOn(*work);
    }
    handOff(work);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!envGone_) tsfn_.Release();
}

void WorkQueue::breakOn(const Work& work) {
  if (!work.failed || !broken_.empty() || work.lane == kDeviceLane) return;
  if (work.code != codes::kTimeout && work.code != codes::kPeerLost) return;
  broken_ = "the communicator was broken by a " + work.code + " in " + work.operation + " #" +
            std::to_string(work.index) + "; create a new one";
}

void WorkQueue::handOff(Work* work) {
  std::unique_lock<std::mutex> lock(mu_);
  bool gone = envGone_;
  lock.unlock();
  if (gone || tsfn_.BlockingCall(work, &WorkQueue::finish) != napi_ok) {
    // The environment is gone: nothing may touch its handles any more, so
    // the work's references are left for the process to reclaim.
    work->owner.reset();
  }
}

void WorkQueue::finish(Napi::Env env, Napi::Function, Work* raw) {
  if (env == nullptr) return;
  std::unique_ptr<Work> work(raw);
  std::shared_ptr<WorkQueue> queue = work->owner;
  work->owner.reset();
  if (!work->settled) queue->settle(env, *work);
}

void WorkQueue::settle(Napi::Env env, Work& work) {
  work.settled = true;
  if (pending_ > 0 && --pending_ == 0 && !aborted_) tsfn_.Unref(env);
  Napi::HandleScope scope(env);
  if (work.failed) {
    rejectWork(env, work, work.code, work.message);
  } else if (work.result) {
    Napi::Value value;
    try {
      value = work.result(env);
    } catch (const Napi::Error& e) {
      work.deferred.Reject(e.Value());
      return;
    }
    work.deferred.Resolve(value);
  } else {
    work.deferred.Resolve(env.Undefined());
  }
}

void WorkQueue::abort(Napi::Env env, const std::string& reason) {
  if (aborted_ || closed_) return;
  aborted_ = true;
  std::deque<Work*> queued;
  std::vector<Work*> inFlight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued.swap(queue_);
    if (running_) inFlight.push_back(running_);
    for (Lane& lane : lanes_) {
      // The one a waiter is awaiting too: device work spends its whole run there.
      if (lane.awaiting) inFlight.push_back(lane.awaiting);
      for (Work* w : lane.items) inFlight.push_back(w);
    }
    stopping_ = true;
  }
  cv_.notify_all();
  for (Lane& lane : lanes_) lane.cv.notify_all();
  for (Work* w : queued) {
    std::unique_ptr<Work> work(w);
    work->owner.reset();
    work->fail(codes::kAborted, std::string(work->operation) + ": " + reason);
    settle(env, *work);
  }
  // Work still held by a thread is settled now; the thread hands it back
  // later and only then are its buffers unpinned.
  for (Work* w : inFlight) {
    w->settled = true;
    if (pending_ > 0) --pending_;
    Napi::HandleScope scope(env);
    rejectWork(env, *w, codes::kAborted, std::string(w->operation) + ": " + reason);
  }
  tsfn_.Unref(env);
  if (runner_.joinable()) runner_.detach();
  for (Lane& lane : lanes_) {
    if (lane.thread.joinable()) lane.thread.detach();
  }
}

void WorkQueue::close() {
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (Lane& lane : lanes_) lane.cv.notify_all();
  if (!aborted_) {
    if (runner_.joinable()) runner_.join();
    for (Lane& lane : lanes_) {
      if (lane.thread.joinable()) lane.thread.join();
    }
  }
}

void WorkQueue::teardown() {
  bool joinRunner;
  bool joinWaiter[kWorkLanes];
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    // Work that never started is dropped with the environment.
    queue_.clear();
    joinRunner = runner_.joinable() && running_ == nullptr;
    bool all = joinRunner;
    for (int l = 0; l < kWorkLanes; l++) {
      const Lane& lane = lanes_[l];
      joinWaiter[l] = lane.thread.joinable() && lane.awaiting == nullptr && lane.items.empty();
      all = all && joinWaiter[l];
    }
    if (!all || aborted_) envGone_ = true;
  }
  cv_.notify_all();
  for (Lane& lane : lanes_) lane.cv.notify_all();
  closed_ = true;
  // Idle threads end at once; one inside Gloo may stay there until its
  // timeout and is left to the exiting process.
  if (joinRunner && !envGone_) runner_.join();
  for (int l = 0; l < kWorkLanes; l++) {
    if (joinWaiter[l] && !envGone_) lanes_[l].thread.join();
  }
  if (runner_.joinable()) runner_.detach();
  for (Lane& lane : lanes_) {
    if (lane.thread.joinable()) lane.thread.detach();
  }
}

}  // namespace collectives
