// monitoredBarrier (torch's monitored_barrier): a barrier that can say which
// ranks did not arrive. Rank 0 posts a receive from every other rank and waits
// for them against one deadline; then, if all arrived, releases them with a
// send each. It goes through the backend's point-to-point transfers, on a tag
// the TypeScript layer reserves, so the engine still moves every byte.
#include <algorithm>
#include <chrono>

#include "args.h"
#include "communicator.h"
#include "errors.h"

namespace collectives {

namespace {

using Clock = std::chrono::steady_clock;

// What is left of `deadline`, at least 1 ms so that a transfer that has
// already arrived is still collected once the time is up.
Millis remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return std::max(left, Millis(1));
}

// A rank that timed out or went away counts as missing; anything else
// (abort, an internal error) ends the barrier with its own code.
bool missingCode(const std::string& code) {
  return code == codes::kTimeout || code == codes::kPeerLost;
}

}  // namespace

// monitoredBarrier(timeoutMs, waitAll, tag) -> Promise<number[]>: on rank 0
// the ranks that did not arrive (empty when all did); elsewhere empty, or a
// TIMEOUT when rank 0 did not release this rank in time.
Napi::Value Communicator::MonitoredBarrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkOpen(env, "monitoredBarrier");
  Millis timeout = timeoutArg(env, info[0]);
  if (!info[1].IsBoolean()) throwTypeError(env, "waitAll: expected a boolean");
  const bool waitAll = info[1].As<Napi::Boolean>().Value();
  uint32_t tag = uint32_t(intArg(env, info[2], "tag", 0, 0xffffffffLL));
  auto work = newWork(info, "monitoredBarrier");
  auto missing = std::make_shared<std::vector<int>>();
  const int rank = rank_;
  const int size = size_;
  work->run = [=](std::shared_ptr<Backend>& b) {
    const Clock::time_point deadline = Clock::now() + timeout;
    char token = 1;
    if (rank != 0) {
      try {
        b->postSend(&token, 1, 0, tag)->wait(remaining(deadline));
        b->postRecv(&token, 1, 0, tag)->wait(remaining(deadline));
      } catch (const CollectiveFailure& f) {
        if (f.code() != codes::kTimeout) throw;
        throw CollectiveFailure(codes::kTimeout,
                                "monitoredBarrier: rank 0 did not confirm within " +
                                    std::to_string(timeout.count()) +
                                    " ms that every rank arrived (it names the missing ones)");
      }
      return;
    }
    std::vector<char> arrived(static_cast<size_t>(size), 0);
    std::vector<std::unique_ptr<PendingTransfer>> recvs(static_cast<size_t>(size));
    for (int r = 1; r < size; r++) recvs[r] = b->postRecv(&arrived[r], 1, r, tag);
    for (int r = 1; r < size; r++) {
      try {
        recvs[r]->wait(remaining(deadline));
      } catch (const CollectiveFailure& f) {
        if (!missingCode(f.code())) throw;
        missing->push_back(r);
        if (!waitAll) break;
      }
    }
    if (!missing->empty()) return;
    std::vector<std::unique_ptr<PendingTransfer>> sends(static_cast<size_t>(size));
    for (int r = 1; r < size; r++) sends[r] = b->postSend(&token, 1, r, tag);
    for (int r = 1; r < size; r++) sends[r]->wait(remaining(deadline));
  };
  work->result = [missing](Napi::Env env) -> Napi::Value {
    Napi::Array out = Napi::Array::New(env, missing->size());
    for (size_t i = 0; i < missing->size(); i++) out.Set(uint32_t(i), Napi::Number::New(env, (*missing)[i]));
    return out;
  };
  return queue_->push(env, std::move(work));
}

}  // namespace collectives
