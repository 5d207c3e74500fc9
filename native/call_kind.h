// The operations a communicator runs, as one enum for dispatch, fingerprints
// and error text, and the two spellings that reach JavaScript: the method's
// name ("allReduce"), which errors and Work use for the operation, and, for
// what nccl-tests measures, nccl-tests' name ("all_reduce"), which
// benchmarks pass to Communicator.algorithm().
#pragma once

#include <cstdint>
#include <string>

namespace collectives {

// Wire values of the detail-mode fingerprint (diagnostics.cc): keep the order.
enum class CallKind : uint8_t {
  kAllReduce = 1,
  kReduceScatter,
  kAllGather,
  kBroadcast,
  kReduce,
  kBarrier,
  kAllToAll,
  kAllToAllV,
  kSplit,
  kSend,
  kRecv,
  kAllToAllQuantized,
  kReduceScatterQuantized,
  kAllGatherQuantized,
  kAllReduceQuantized,
};

struct CallKindNames {
  CallKind kind;
  const char* method;
  const char* ncclTests;  // nullptr where nccl-tests has no such test
};

inline constexpr CallKindNames kCallKindNames[] = {
    {CallKind::kAllReduce, "allReduce", "all_reduce"},
    {CallKind::kReduceScatter, "reduceScatter", "reduce_scatter"},
    {CallKind::kAllGather, "allGather", "all_gather"},
    {CallKind::kBroadcast, "broadcast", "broadcast"},
    {CallKind::kReduce, "reduce", "reduce"},
    {CallKind::kBarrier, "barrier", "barrier"},
    {CallKind::kAllToAll, "allToAll", "alltoall"},
    {CallKind::kAllToAllV, "allToAllV", nullptr},
    {CallKind::kSplit, "split", nullptr},
    {CallKind::kSend, "send", nullptr},
    {CallKind::kRecv, "recv", nullptr},
    {CallKind::kAllToAllQuantized, "allToAllQuantized", nullptr},
    {CallKind::kReduceScatterQuantized, "reduceScatterQuantized", nullptr},
    {CallKind::kAllGatherQuantized, "allGatherQuantized", nullptr},
    {CallKind::kAllReduceQuantized, "allReduceQuantized", nullptr},
};

// The method's name; "unknown" for a value no kind has (a peer's corrupt
// fingerprint).
inline const char* callKindName(CallKind kind) {
  for (const CallKindNames& n : kCallKindNames) {
    if (n.kind == kind) return n.method;
  }
  return "unknown";
}

// The kind whose method is named `name`; false when none is.
inline bool callKindFromMethod(const std::string& name, CallKind* kind) {
  for (const CallKindNames& n : kCallKindNames) {
    if (name == n.method) {
      *kind = n.kind;
      return true;
    }
  }
  return false;
}

// The kind nccl-tests measures that `name` names, in nccl-tests' spelling or
// the method's; false when it names none.
inline bool callKindFromTestName(const std::string& name, CallKind* kind) {
  for (const CallKindNames& n : kCallKindNames) {
    if (n.ncclTests && (name == n.ncclTests || name == n.method)) {
      *kind = n.kind;
      return true;
    }
  }
  return false;
}

}  // namespace collectives
