// Client side of the rendezvous store: a gloo::rendezvous::Store that talks to
// the job's TCP key-value server (lib/store/server.ts) over the protocol in
// native/store/PROTOCOL.md. One connection per process, shared by every
// communicator of the process, so every request holds the connection's mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

namespace collectives {

class TcpStore : public gloo::rendezvous::Store {
 public:
  // Connects and presents the token. Retries the connection until `timeout`
  // (the server may start after the client). Throws StoreError on refusal,
  // on timeout, or when the address cannot be resolved.
  TcpStore(const std::string& host, int port, const std::string& token,
           std::chrono::milliseconds timeout);
  ~TcpStore() override;

  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  void set(const std::string& key, const std::vector<char>& data) override;
  // Blocks until the key exists (default timeout), then returns its value.
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;
  // Adds `delta` to the integer stored at key (0 when absent); returns the sum.
  int64_t add(const std::string& key, int64_t delta);

  std::chrono::milliseconds timeout() const { return timeout_; }
  void setTimeout(std::chrono::milliseconds t) { timeout_ = t; }

 private:
  std::vector<char> request(const std::vector<char>& frame,
                            std::chrono::milliseconds replyTimeout);
  int fd_ = -1;
  std::mutex mu_;
  std::chrono::milliseconds timeout_;

  // "host:port" (IPv6 hosts bracketed), for error messages.
  std::string endpoint_;
  void connectUntil(const std::string& host, int port,
                    std::chrono::steady_clock::time_point deadline);
  void closeConnection();
  // Sends one request and turns a TIMEOUT/REFUSED/ERROR reply into a
  // StoreError whose message names `what`; returns the VALUE blob, if any.
  std::vector<char> call(const std::string& what, const std::vector<char>& frame,
                         std::chrono::milliseconds replyTimeout);
  void checkKey(const std::string& what, const std::string& key) const;
  void checkSize(const std::string& what, size_t bodyBytes) const;
};

}  // namespace collectives
