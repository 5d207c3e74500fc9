#include "store/tcp_store.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "errors.h"

namespace collectives {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint32_t kProtocolVersion = 1;
constexpr size_t kMaxFrameBytes = 16 * 1024 * 1024;
constexpr size_t kMaxKeyBytes = 4096;

constexpr uint8_t kOpHello = 1;
constexpr uint8_t kOpSet = 2;
constexpr uint8_t kOpGet = 3;
constexpr uint8_t kOpWait = 4;
constexpr uint8_t kOpAdd = 5;

constexpr uint8_t kStatusOk = 0;
constexpr uint8_t kStatusValue = 1;
constexpr uint8_t kStatusTimeout = 2;
constexpr uint8_t kStatusRefused = 3;
constexpr uint8_t kStatusError = 4;

// The server answers a timed-out GET/WAIT with TIMEOUT, which names the
// missing keys; the client's own deadline is later so that reply wins.
constexpr milliseconds kReplySlack{2000};
// One unanswered SYN (a filtered port) must not use up the whole connect
// timeout while other resolved addresses are left untried.
constexpr milliseconds kConnectAttemptLimit{3000};
constexpr milliseconds kFirstBackoff{10};
constexpr milliseconds kMaxBackoff{1000};

constexpr Clock::time_point kNoDeadline = Clock::time_point::max();

// Gloo's convention: a zero timeout (gloo::kNoTimeout) means "no timeout".
Clock::time_point deadlineAfter(milliseconds timeout) {
  if (timeout == milliseconds::zero()) return kNoDeadline;
  return Clock::now() + std::max(timeout, milliseconds::zero());
}

int pollTimeoutMs(Clock::time_point deadline) {
  if (deadline == kNoDeadline) return -1;
  auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

uint32_t wireTimeoutMs(milliseconds timeout) {
  if (timeout == milliseconds::zero()) return UINT32_MAX;
  return static_cast<uint32_t>(
      std::clamp<long long>(timeout.count(), 0, UINT32_MAX));
}

milliseconds replyTimeoutFor(milliseconds serverTimeout) {
  if (serverTimeout == milliseconds::zero()) return milliseconds::zero();
  return std::max(serverTimeout, milliseconds::zero()) + kReplySlack;
}

std::string errnoText(int err) { return std::strerror(err); }

std::string quoteKey(const std::string& key) {
  constexpr size_t kShown = 200;
  if (key.size() <= kShown) return "\"" + key + "\"";
  return "\"" + key.substr(0, kShown) + "...\" (" + std::to_string(key.size()) +
         " bytes)";
}

std::string quoteKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (size_t i = 0; i < keys.size() && i < 5; i++) {
    if (i > 0) out += ", ";
    out += quoteKey(keys[i]);
  }
  if (keys.size() > 5) out += " and " + std::to_string(keys.size() - 5) + " more";
  return out;
}

// Builds one request frame; the length prefix is filled in by finish().
class FrameWriter {
 public:
  explicit FrameWriter(uint8_t op) : buf_(4, 0) { buf_.push_back(static_cast<char>(op)); }

  void u32(uint32_t v) {
    for (int i = 0; i < 4; i++) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void i64(int64_t v) {
    auto u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; i++) buf_.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  void bytes(const char* data, size_t n) {
    u32(static_cast<uint32_t>(n));
    buf_.insert(buf_.end(), data, data + n);
  }

  std::vector<char> finish() {
    size_t body = buf_.size() - 4;
    for (int i = 0; i < 4; i++) buf_[i] = static_cast<char>((body >> (8 * i)) & 0xff);
    return std::move(buf_);
  }

  size_t bodySize() const { return buf_.size() - 4; }

 private:
  std::vector<char> buf_;
};

uint32_t readU32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

int64_t readI64(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  uint64_t u = 0;
  for (int i = 0; i < 8; i++) u |= uint64_t{b[i]} << (8 * i);
  return static_cast<int64_t>(u);
}

// An IO failure on the socket; `timedOut` tells a deadline from a breakage.
struct IoFailure {
  bool timedOut;
  std::string detail;
};

// Waits until fd is ready for `events`; returns false at the deadline.
bool waitReady(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, pollTimeoutMs(deadline));
    if (rc > 0) return true;
    if (rc == 0) {
      if (deadline != kNoDeadline && Clock::now() >= deadline) return false;
      continue;
    }
    if (errno != EINTR) throw IoFailure{false, "poll: " + errnoText(errno)};
  }
}

void sendAll(int fd, const char* data, size_t n, Clock::time_point deadline) {
#ifdef MSG_NOSIGNAL
  constexpr int kFlags = MSG_NOSIGNAL | MSG_DONTWAIT;
#else
  constexpr int kFlags = MSG_DONTWAIT;
#endif
  while (n > 0) {
    if (!waitReady(fd, POLLOUT, deadline)) throw IoFailure{true, "timed out sending"};
    ssize_t sent = ::send(fd, data, n, kFlags);
    if (sent < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      throw IoFailure{false, "send: " + errnoText(errno)};
    }
    data += sent;
    n -= static_cast<size_t>(sent);
  }
}

void recvAll(int fd, char* data, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    if (!waitReady(fd, POLLIN, deadline)) throw IoFailure{true, "timed out waiting for the reply"};
    ssize_t got = ::recv(fd, data, n, MSG_DONTWAIT);
    if (got == 0) throw IoFailure{false, "the store closed the connection"};
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      throw IoFailure{false, "recv: " + errnoText(errno)};
    }
    data += got;
    n -= static_cast<size_t>(got);
  }
}

bool setBlocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0) return false;
  flags = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  return ::fcntl(fd, F_SETFL, flags) == 0;
}

// One connection attempt to one resolved address. Returns the connected
// socket, or -1 with `err` set.
int connectOnce(const addrinfo* ai, Clock::time_point deadline, int* err) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  auto fail = [&](int e) {
    *err = e;
    ::close(fd);
    return -1;
  };
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (!setBlocking(fd, false)) return fail(errno);
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    // An interrupted non-blocking connect keeps going in the background.
    if (errno != EINPROGRESS && errno != EINTR) return fail(errno);
    try {
      if (!waitReady(fd, POLLOUT, deadline)) return fail(ETIMEDOUT);
    } catch (const IoFailure&) {
      return fail(EIO);
    }
    int soError = 0;
    socklen_t len = sizeof(soError);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) != 0) return fail(errno);
    if (soError != 0) return fail(soError);
  }
  if (!setBlocking(fd, true)) return fail(errno);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#ifdef SO_NOSIGPIPE
  ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
  return fd;
}

}  // namespace

TcpStore::TcpStore(const std::string& host, int port, const std::string& token,
                   std::chrono::milliseconds timeout)
    : timeout_(timeout),
      endpoint_(host.find(':') != std::string::npos
                    ? "[" + host + "]:" + std::to_string(port)
                    : host + ":" + std::to_string(port)) {
  if (port <= 0 || port > 65535) {
    throw StoreError(codes::kInvalidArgument,
                     "store address " + endpoint_ + ": port must be from 1 to 65535");
  }
  if (token.size() > kMaxFrameBytes - 16) {
    throw StoreError(codes::kInvalidArgument,
                     "store " + endpoint_ + ": the token is too long");
  }
  const Clock::time_point deadline = deadlineAfter(timeout);
  connectUntil(host, port, deadline);

  FrameWriter w(kOpHello);
  w.u32(kProtocolVersion);
  w.bytes(token.data(), token.size());
  milliseconds left = milliseconds::zero();
  if (deadline != kNoDeadline) {
    // Leave the handshake at least a moment even when connecting took all.
    left = std::max(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()),
                    milliseconds{100});
  }
  try {
    call("handshake", w.finish(), left);
  } catch (...) {
    closeConnection();
    throw;
  }
}

TcpStore::~TcpStore() { closeConnection(); }

void TcpStore::connectUntil(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  const std::string service = std::to_string(port);
  std::string lastError = "no address tried";
  milliseconds backoff = kFirstBackoff;

  for (;;) {
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc == 0) {
      for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        Clock::time_point attemptDeadline = std::min(deadline, Clock::now() + kConnectAttemptLimit);
        int err = 0;
        int fd = connectOnce(ai, attemptDeadline, &err);
        if (fd >= 0) {
          ::freeaddrinfo(res);
          fd_ = fd;
          return;
        }
        lastError = errnoText(err);
      }
      ::freeaddrinfo(res);
    } else if (rc == EAI_AGAIN) {
      lastError = ::gai_strerror(rc);
    } else {
      std::string why = rc == EAI_SYSTEM ? errnoText(errno) : ::gai_strerror(rc);
      throw StoreError(codes::kStoreError,
                       "cannot resolve the store address " + endpoint_ + ": " + why);
    }

    Clock::time_point now = Clock::now();
    if (now >= deadline) {
      throw StoreError(codes::kTimeout,
                       "could not connect to the store at " + endpoint_ + " within " +
                           std::to_string(timeout_.count()) + " ms: " + lastError);
    }
    auto pause = backoff;
    if (deadline != kNoDeadline) {
      pause = std::min(pause, std::chrono::ceil<milliseconds>(deadline - now));
    }
    std::this_thread::sleep_for(pause);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

void TcpStore::closeConnection() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

std::vector<char> TcpStore::request(const std::vector<char>& frame,
                                    std::chrono::milliseconds replyTimeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) {
    throw StoreError(codes::kStoreError, "the connection to the store at " + endpoint_ +
                                             " was closed after an earlier failure");
  }
  const Clock::time_point deadline = deadlineAfter(replyTimeout);
  std::vector<char> body;
  try {
    sendAll(fd_, frame.data(), frame.size(), deadline);
    char header[4];
    recvAll(fd_, header, sizeof(header), deadline);
    uint32_t length = readU32(header);
    if (length == 0 || length > kMaxFrameBytes) {
      throw IoFailure{false, "malformed reply: frame of " + std::to_string(length) + " bytes"};
    }
    body.resize(length);
    recvAll(fd_, body.data(), length, deadline);
  } catch (const IoFailure& f) {
    // Whatever is left unread would be taken for the next reply.
    closeConnection();
    throw StoreError(f.timedOut ? codes::kTimeout : codes::kStoreError,
                     "store " + endpoint_ + ": " + f.detail);
  }

  const uint8_t status = static_cast<uint8_t>(body[0]);
  bool wellFormed = false;
  if (status == kStatusOk) {
    wellFormed = body.size() == 1;
  } else if (status <= kStatusError) {
    wellFormed = body.size() >= 5 && readU32(body.data() + 1) == body.size() - 5;
  }
  if (!wellFormed) {
    closeConnection();
    throw StoreError(codes::kStoreError,
                     "store " + endpoint_ + ": malformed reply with status " +
                         std::to_string(status));
  }
  return body;
}

std::vector<char> TcpStore::call(const std::string& what, const std::vector<char>& frame,
                                 std::chrono::milliseconds replyTimeout) {
  std::vector<char> body;
  try {
    body = request(frame, replyTimeout);
  } catch (const StoreError& e) {
    throw StoreError(e.code(), std::string(e.what()) + " (during " + what + ")");
  }
  const uint8_t status = static_cast<uint8_t>(body[0]);
  if (status == kStatusOk) return {};
  std::vector<char> payload(body.begin() + 5, body.end());
  if (status == kStatusValue) return payload;

  const std::string message = "store " + endpoint_ + ": " + what + ": " +
                              std::string(payload.begin(), payload.end());
  if (status == kStatusTimeout) throw StoreError(codes::kTimeout, message);
  if (status == kStatusRefused) throw StoreError(codes::kStoreRefused, message);
  throw StoreError(codes::kStoreError, message);
}

void TcpStore::checkKey(const std::string& what, const std::string& key) const {
  if (key.size() > kMaxKeyBytes) {
    throw StoreError(codes::kInvalidArgument,
                     "store " + endpoint_ + ": " + what + ": the key has " +
                         std::to_string(key.size()) + " bytes, more than " +
                         std::to_string(kMaxKeyBytes));
  }
}

void TcpStore::checkSize(const std::string& what, size_t bodyBytes) const {
  if (bodyBytes > kMaxFrameBytes) {
    throw StoreError(codes::kInvalidArgument,
                     "store " + endpoint_ + ": " + what + ": the request has " +
                         std::to_string(bodyBytes) + " bytes, more than " +
                         std::to_string(kMaxFrameBytes));
  }
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) {
  const std::string what = "set " + quoteKey(key);
  checkKey(what, key);
  checkSize(what, 1 + 4 + key.size() + 4 + data.size());
  FrameWriter w(kOpSet);
  w.bytes(key.data(), key.size());
  w.bytes(data.data(), data.size());
  call(what, w.finish(), timeout_);
}

std::vector<char> TcpStore::get(const std::string& key) {
  const std::string what = "get " + quoteKey(key);
  checkKey(what, key);
  const milliseconds timeout = timeout_;
  FrameWriter w(kOpGet);
  w.bytes(key.data(), key.size());
  w.u32(wireTimeoutMs(timeout));
  return call(what, w.finish(), replyTimeoutFor(timeout));
}

void TcpStore::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void TcpStore::wait(const std::vector<std::string>& keys,
                    const std::chrono::milliseconds& timeout) {
  const std::string what = "wait for " + quoteKeys(keys);
  FrameWriter w(kOpWait);
  w.u32(static_cast<uint32_t>(std::min<size_t>(keys.size(), UINT32_MAX)));
  for (const auto& key : keys) {
    checkKey(what, key);
    w.bytes(key.data(), key.size());
    checkSize(what, w.bodySize() + 4);
  }
  w.u32(wireTimeoutMs(timeout));
  call(what, w.finish(), replyTimeoutFor(timeout));
}

int64_t TcpStore::add(const std::string& key, int64_t delta) {
  const std::string what = "add to " + quoteKey(key);
  checkKey(what, key);
  FrameWriter w(kOpAdd);
  w.bytes(key.data(), key.size());
  w.i64(delta);
  std::vector<char> value = call(what, w.finish(), timeout_);
  if (value.size() != 8) {
    throw StoreError(codes::kStoreError,
                     "store " + endpoint_ + ": " + what + ": the reply holds " +
                         std::to_string(value.size()) + " bytes, not an 8-byte integer");
  }
  return readI64(value.data());
}

}  // namespace collectives
