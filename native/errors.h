// Failures that cross from native code into JavaScript carry a stable code.
// The TypeScript layer turns them into CollectiveError with the rank and the
// operation; tests assert on the code, never on the wording.
#pragma once

#include <stdexcept>
#include <string>

namespace collectives {

namespace codes {
constexpr const char* kTimeout = "TIMEOUT";
constexpr const char* kPeerLost = "PEER_LOST";
constexpr const char* kMismatch = "MISMATCH";
constexpr const char* kInvalidArgument = "INVALID_ARGUMENT";
constexpr const char* kAborted = "ABORTED";
constexpr const char* kBackendUnavailable = "BACKEND_UNAVAILABLE";
constexpr const char* kDestroyed = "DESTROYED";
constexpr const char* kStoreRefused = "STORE_REFUSED";
constexpr const char* kStoreError = "STORE_ERROR";
constexpr const char* kInternal = "INTERNAL";
}  // namespace codes

class CollectiveFailure : public std::runtime_error {
 public:
  CollectiveFailure(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// A store failure: refused token (STORE_REFUSED), timeout (TIMEOUT) or a
// broken connection (STORE_ERROR).
class StoreError : public CollectiveFailure {
 public:
  using CollectiveFailure::CollectiveFailure;
};

}  // namespace collectives
