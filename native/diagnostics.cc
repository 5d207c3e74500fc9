#include "diagnostics.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <vector>

#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/address.h>

#include "errors.h"

namespace collectives {
namespace {

// One rank's fingerprint as it travels (fixed size, host byte order: every
// rank of a job runs the same build on the same kind of machine).
struct Wire {
  uint64_t seq;
  uint64_t count;
  int32_t root;
  int32_t redOp;
  uint8_t kind;
  uint8_t dtype;
  uint8_t hasDtype;
  uint8_t device;
  int32_t format;
  uint32_t blockSize;
  uint8_t pad[4];
};
static_assert(sizeof(Wire) == 40, "the fingerprint is 40 bytes on the wire");

const char* redOpName(int32_t op) {
  switch (op) {
    case int32_t(RedOp::kSum): return "sum";
    case int32_t(RedOp::kProd): return "prod";
    case int32_t(RedOp::kMin): return "min";
    case int32_t(RedOp::kMax): return "max";
    case int32_t(RedOp::kAvg): return "avg";
    case int32_t(RedOp::kBand): return "band";
    case int32_t(RedOp::kBor): return "bor";
    case int32_t(RedOp::kBxor): return "bxor";
  }
  return "?";
}

bool isPointToPoint(CallKind k) { return k == CallKind::kSend || k == CallKind::kRecv; }

CallSignature fromWire(const Wire& w) {
  CallSignature s{static_cast<CallKind>(w.kind)};
  s.dtype = static_cast<DType>(w.dtype);
  s.hasDtype = w.hasDtype != 0;
  s.count = w.count;
  s.root = w.root;
  s.redOp = w.redOp;
  s.device = w.device != 0;
  s.format = w.format;
  s.blockSize = w.blockSize;
  return s;
}

bool sameCall(const Wire& a, const Wire& b) {
  if (a.seq != b.seq || a.kind != b.kind || a.hasDtype != b.hasDtype) return false;
  if (a.device != b.device || a.format != b.format || a.blockSize != b.blockSize) return false;
  if (a.hasDtype && a.dtype != b.dtype) return false;
  // allToAllV's counts differ between ranks by design; split's sizes differ by color.
  const auto kind = static_cast<CallKind>(a.kind);
  if (kind == CallKind::kAllToAllV || kind == CallKind::kSplit) return true;
  return a.count == b.count && a.root == b.root && a.redOp == b.redOp;
}

// Forwards to a posted transfer and names the peer when it is lost.
class NamedTransfer : public PendingTransfer {
 public:
  NamedTransfer(std::unique_ptr<PendingTransfer> inner, Work* work, int peer)
      : inner_(std::move(inner)), work_(work), peer_(peer) {}
  void wait(Millis timeout) override {
    try {
      inner_->wait(timeout);
    } catch (const CollectiveFailure& e) {
      if (e.code() != codes::kPeerLost) throw;
      work_->peerRank = peer_;
      throw CollectiveFailure(e.code(), std::string(e.what()) + " (rank " +
                                            std::to_string(peer_) + " was lost)");
    }
  }

 private:
  std::unique_ptr<PendingTransfer> inner_;
  Work* work_;
  int peer_;
};

}  // namespace

std::string Diagnostics::describe(const CallSignature& s, uint64_t seq) {
  std::string out = callKindName(s.kind);
  std::vector<std::string> parts;
  if (s.hasDtype) {
    parts.push_back(std::string(dtypeName(s.dtype)) + " \xC3\x97 " + std::to_string(s.count));
  }
  if (s.redOp >= 0) parts.push_back(redOpName(s.redOp));
  if (s.root >= 0) {
    parts.push_back((isPointToPoint(s.kind) ? "peer " : "root ") + std::to_string(s.root));
  }
  if (s.format >= 0) {
    static const char* const formats[] = {"int8", "int4", "fp8e4m3", "fp8e5m2"};
    parts.push_back(std::string(s.format < 4 ? formats[s.format] : "?") + " blocks of " +
                    std::to_string(s.blockSize));
  }
  if (s.device) parts.push_back("on device");
  out += "(";
  for (size_t i = 0; i < parts.size(); i++) out += (i ? ", " : "") + parts[i];
  out += ") #" + std::to_string(seq);
  return out;
}

void Diagnostics::guard(Work& work, const CallSignature& sig, Millis timeout) {
  const bool collective = !isPointToPoint(sig.kind);
  const uint64_t seq = collective ? seq_++ : 0;
  auto inner = std::move(work.run);
  Work* raw = &work;
  auto self = shared_from_this();
  work.run = [self, inner, raw, sig, seq, timeout, collective](std::shared_ptr<Backend>& b) {
    try {
      if (self->detail_ && collective && b && self->size_ > 1) {
        self->exchange(*b, sig, seq, timeout);
      }
      if (inner) inner(b);
    } catch (const CollectiveFailure& e) {
      if (e.code() != codes::kPeerLost) throw;
      int peer = collective ? self->peerIn(e.what()) : sig.root;
      if (peer < 0) throw;
      raw->peerRank = peer;
      throw CollectiveFailure(e.code(), std::string(e.what()) + " (rank " +
                                            std::to_string(peer) + " was lost)");
    }
    if (raw->transfer && !collective) {
      raw->transfer = std::make_unique<NamedTransfer>(std::move(raw->transfer), raw, sig.root);
    }
  };
}

void Diagnostics::exchange(Backend& backend, const CallSignature& sig, uint64_t seq,
                           Millis timeout) {
  Wire mine;
  std::memset(&mine, 0, sizeof(mine));
  mine.seq = seq;
  mine.count = sig.count;
  mine.root = sig.root;
  mine.redOp = sig.redOp;
  mine.kind = uint8_t(sig.kind);
  mine.dtype = uint8_t(sig.dtype);
  mine.hasDtype = sig.hasDtype ? 1 : 0;
  mine.device = sig.device ? 1 : 0;
  mine.format = sig.format;
  mine.blockSize = sig.blockSize;
  std::vector<Wire> all(static_cast<size_t>(size_));
  backend.allGather(&mine, all.data(), sizeof(Wire), DType::kUint8, timeout);
  bool same = true;
  for (const Wire& w : all) same = same && sameCall(w, all[0]);
  if (same) return;
  // Ranks that made the same call are listed together.
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (int r = 0; r < size_; r++) {
    std::string call = describe(fromWire(all[size_t(r)]), all[size_t(r)].seq);
    auto it = groups.begin();
    while (it != groups.end() && it->first != call) ++it;
    if (it == groups.end()) {
      groups.push_back({call, {r}});
    } else {
      it->second.push_back(r);
    }
  }
  std::string text;
  for (const auto& g : groups) {
    if (!text.empty()) text += "; ";
    text += g.second.size() == 1 ? "rank " : "ranks ";
    for (size_t i = 0; i < g.second.size(); i++) {
      text += (i ? "," : "") + std::to_string(g.second[i]);
    }
    text += " called " + g.first;
  }
  throw CollectiveFailure(codes::kMismatch,
                          std::string("ranks called different collectives: ") + text);
}

namespace {

// The remote ends of the established IPv4 TCP connections on this host, by
// local port, from /proc/net/tcp (Linux). Gloo names a peer that connected
// to this rank by that remote end, an address nobody published.
std::multimap<uint16_t, sockaddr_in> establishedByLocalPort() {
  std::multimap<uint16_t, sockaddr_in> out;
  FILE* f = std::fopen("/proc/net/tcp", "r");
  if (!f) return out;
  char line[512];
  if (!std::fgets(line, sizeof(line), f)) {
    std::fclose(f);
    return out;
  }
  while (std::fgets(line, sizeof(line), f)) {
    unsigned localIp, localPort, remoteIp, remotePort, state;
    if (std::sscanf(line, " %*d: %8X:%4X %8X:%4X %2X", &localIp, &localPort, &remoteIp,
                    &remotePort, &state) != 5) {
      continue;
    }
    if (state != 1) continue;  // ESTABLISHED
    sockaddr_in a;
    std::memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = remoteIp;  // the file prints it in host order of the raw word
    a.sin_port = htons(uint16_t(remotePort));
    out.emplace(uint16_t(localPort), a);
  }
  std::fclose(f);
  return out;
}

}  // namespace

void Diagnostics::learnPeers(bool syncPairs) {
  if (!store_ || size_ <= 1) return;
  std::map<std::string, int> table;
  try {
    using gloo::transport::tcp::Address;
    const size_t each = Address().bytes().size();
    std::multimap<uint16_t, sockaddr_in> established;
    bool scanned = false;
    // Every pair listens on a port of its own, so the synchronous pairs'
    // context (GlooBackend's "/sync" namespace) has addresses of its own, and
    // a failure on those pairs names one of them.
    std::vector<std::string> spaces{prefix_};
    if (syncPairs) spaces.push_back(prefix_ + "/sync");
    for (const std::string& space : spaces) {
      gloo::rendezvous::PrefixStore scoped(space, *store_);
      for (int r = 0; r < size_; r++) {
        // Each rank published one address per pair, for peers in rank order
        // without itself. A peer this rank connected to is named by the address
        // the peer published; one that connected here, by where it came from.
        std::vector<char> blob = scoped.get(std::to_string(r));
        if (each == 0 || blob.size() != each * size_t(size_ - 1)) return;
        for (int i = 0; i < size_ - 1; i++) {
          std::vector<char> one(blob.begin() + long(i * each), blob.begin() + long((i + 1) * each));
          Address address(one);
          if (r != rank_) {
            table[address.str()] = r;
            continue;
          }
          const int peer = i < rank_ ? i : i + 1;
          const sockaddr_storage& ss = address.getSockaddr();
          if (ss.ss_family != AF_INET) continue;
          const uint16_t port = ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
          if (!scanned) {
            established = establishedByLocalPort();
            scanned = true;
          }
          auto [first, last] = established.equal_range(port);
          for (auto it = first; it != last; ++it) {
            table[Address(reinterpret_cast<const sockaddr*>(&it->second), sizeof(sockaddr_in)).str()] =
                peer;
          }
        }
      }
    }
  } catch (const std::exception&) {
    return;  // failures will name addresses only
  }
  std::lock_guard<std::mutex> lock(mu_);
  peers_ = std::move(table);
}

void Diagnostics::learnRankNames() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int r = 0; r < size_; r++) peers_["(MPI rank " + std::to_string(r) + ")"] = r;
}

int Diagnostics::peerIn(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [address, rank] : peers_) {
    for (size_t at = message.find(address); at != std::string::npos;
         at = message.find(address, at + 1)) {
      size_t end = at + address.size();
      // "[10.0.0.1]:12" must not match inside "[10.0.0.1]:123".
      if (end >= message.size() || !std::isdigit(static_cast<unsigned char>(message[end]))) {
        return rank;
      }
    }
  }
  return -1;
}

}  // namespace collectives
