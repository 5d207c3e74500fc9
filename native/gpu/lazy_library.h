// A library of run-time symbols, opened and bound on first use, once per
// process, and then kept mapped: CUDA and NCCL register process-wide state
// and their own exit handlers, and unloading them under those is unsafe. The
// CUDA runtime, NCCL and the kernels library differ only in where they are
// searched, which symbols they bind and what else makes them usable.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpu/dynamic_library.h"

namespace collectives {
namespace gpu {

// What loading found; each library's status adds its versions.
template <typename Api>
struct LibraryStatus {
  bool available = false;
  std::string library;  // the file opened
  std::string reason;   // why not available
  std::vector<LoadAttempt> tried;
  const Api* api = nullptr;  // set once every symbol is bound
};

template <typename Status, typename Api>
class LazyLibrary {
 public:
  struct Spec {
    LibrarySearch search;
    // When nothing loads, the reason reads "<what> not found; <where it
    // looked>; <fix>" (without the fix when it is empty).
    std::string what;
    std::string fix;
    // Appended to the reason when a symbol is missing.
    std::string missingHint;
    // Fills `api` (COLLECTIVES_BIND throws MissingSymbol). Returns false, with
    // status.reason set, to refuse the library (a version too old).
    bool (*bind)(const DynamicLibrary& lib, Api& api, Status& status);
    // Runs once `api` is bound: whether the library is usable, with
    // status.reason set when not. Null: it is.
    bool (*usable)(Status& status) = nullptr;
  };

  explicit LazyLibrary(Spec spec) : spec_(std::move(spec)) {}
  LazyLibrary(const LazyLibrary&) = delete;
  LazyLibrary& operator=(const LazyLibrary&) = delete;

  // Loads on the first call (thread-safe); later calls return the same status.
  const Status& status() {
    std::call_once(once_, [this] { load(); });
    return status_;
  }

 private:
  void load() {
    std::unique_ptr<DynamicLibrary> lib = DynamicLibrary::open(spec_.search, &status_.tried);
    if (!lib) {
      std::string notFound = spec_.what + " not found; " + summarizeAttempts(status_.tried);
      if (!spec_.fix.empty()) notFound += "; " + spec_.fix;
      status_.reason = notLoadedReason(spec_.search, status_.tried, notFound);
      return;
    }
    status_.library = lib->path();
    try {
      if (!spec_.bind(*lib, api_, status_)) return;
    } catch (const MissingSymbol& e) {
      status_.reason = e.what() + spec_.missingHint;
      return;
    }
    lib.release();
    status_.api = &api_;
    status_.available = !spec_.usable || spec_.usable(status_);
  }

  const Spec spec_;
  std::once_flag once_;
  Status status_;
  Api api_{};
};

}  // namespace gpu
}  // namespace collectives
