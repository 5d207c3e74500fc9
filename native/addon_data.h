// Per-environment state (one per main thread or worker thread that loads the
// addon): the Communicator constructor and the queues to stop when the
// environment ends, and the DeviceBuffer constructor (to recognize a parent
// buffer when a view is made).
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include <napi.h>

#include "work_queue.h"

namespace collectives {

struct AddonData {
  Napi::FunctionReference communicatorConstructor;
  Napi::FunctionReference deviceBufferConstructor;
  std::vector<std::weak_ptr<WorkQueue>> queues;
  // Open communicators of more than one rank (Communicator::inlineNow).
  std::shared_ptr<int> groups = std::make_shared<int>(0);

  void track(const std::shared_ptr<WorkQueue>& queue) {
    queues.erase(std::remove_if(queues.begin(), queues.end(),
                                [](const std::weak_ptr<WorkQueue>& w) { return w.expired(); }),
                 queues.end());
    queues.push_back(queue);
  }
  // The environment is ending: no JS runs again, threads must not be joined.
  void teardown() {
    for (auto& weak : queues) {
      if (auto queue = weak.lock()) queue->teardown();
    }
    queues.clear();
  }
};

}  // namespace collectives
