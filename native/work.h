// One in-flight operation.
//
// Lifecycle: created on the JS thread with its buffers pinned and a promise
// deferred; `run` executes on the communicator's queue thread and never
// touches the JS environment; a point-to-point or device operation leaves a
// transfer that the waiter thread completes; then the JS thread settles the promise
// (resolve on success, reject with the failure's code otherwise) and unpins
// the buffers. Abort settles a work early (ABORTED); its buffers stay pinned
// until the thread that still holds it lets go.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <napi.h>

#include "backend.h"

namespace collectives {

class WorkQueue;

constexpr int kHostLane = 0;
constexpr int kDeviceLane = 1;
constexpr int kWorkLanes = 2;

struct Work {
  Work(Napi::Env env, const char* operation)
      : operation(operation), deferred(Napi::Promise::Deferred::New(env)) {}

  const char* operation;
  // Whether the pending operation keeps the process alive. init()'s rendezvous does not: init()
  // holds a timer for it, which an aborted init() clears (options.signal).
  bool holdsProcess = true;

  // Queue thread. The connect operation assigns the backend; the others use it.
  std::function<void(std::shared_ptr<Backend>&)> run;
  // Set by `run` when completion is awaited on the waiter thread.
  std::unique_ptr<PendingTransfer> transfer;
  Millis transferTimeout{0};
  // Which waiter thread awaits `transfer`: kHostLane (Gloo's point-to-point)
  // or kDeviceLane (CUDA events). Set on the JS thread.
  int lane = kHostLane;

  // Outcome, written by the worker threads before the hand-off to JS.
  bool failed = false;
  std::string code;
  std::string message;
  // The rank a PEER_LOST failure lost, when known; -1 otherwise.
  int peerRank = -1;
  // The operation's place in the communicator's issue order, from 1 (0: init).
  uint64_t index = 0;

  // Keeps the queue alive until the JS thread has settled this work.
  std::shared_ptr<WorkQueue> owner;

  // JS thread only.
  Napi::Promise::Deferred deferred;
  std::vector<Napi::Reference<Napi::Value>> pins;
  // Other holds released with the work on the JS thread (device memory leases).
  std::vector<std::shared_ptr<void>> leases;
  // Builds the resolution value; undefined when empty.
  std::function<Napi::Value(Napi::Env)> result;
  bool settled = false;

  void pin(Napi::Value value) { pins.push_back(Napi::Persistent(value)); }
  void fail(const std::string& c, const std::string& m) {
    failed = true;
    code = c;
    message = m;
  }
};

// Rejects `work`'s promise with an Error carrying `code`, `operation`.
void rejectWork(Napi::Env env, Work& work, const std::string& code,
                const std::string& message);

}  // namespace collectives
