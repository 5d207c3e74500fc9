#include "mpi/mpi_runtime.h"

#include <cstdlib>

#include "errors.h"
#include "reduce_ops.h"

namespace collectives {
namespace mpi {
namespace {

enum HalfOpKind { kSumPair = 0, kProdPair, kMinPair, kMaxPair, kAvgPair };

template <bool Bf16, int Kind>
void combineHalves(void* in, void* inout, int* len, MPI_Datatype*) {
  const uint16_t* a = static_cast<const uint16_t*>(in);
  uint16_t* b = static_cast<uint16_t*>(inout);
  const DType t = Bf16 ? DType::kBFloat16 : DType::kFloat16;
  for (int i = 0; i < *len; i++) {
    const float x = halfBitsToFloat(t, a[i]);
    const float y = halfBitsToFloat(t, b[i]);
    float r;
    if (Kind == kSumPair) {
      r = x + y;
    } else if (Kind == kProdPair) {
      r = x * y;
    } else if (Kind == kAvgPair) {
      r = (x + y) / 2.0f;
    } else if (x != x || y != y) {
      r = x != x ? x : y;  // NaN wins, as in reduce_ops.cc
    } else if (Kind == kMinPair) {
      r = y < x ? y : x;
    } else {
      r = y > x ? y : x;
    }
    b[i] = floatToHalfBits(t, r);
  }
}

template <DType T, RedOp Op>
void combineWrapping(void* in, void* inout, int* len, MPI_Datatype*) {
  reduceInto(T, Op, inout, in, size_t(*len));
}

void createByteOps(const MpiApi& api, MPI_Op (&ops)[2][2]) {
  MPI_User_function* fns[2][2] = {
      {&combineWrapping<DType::kInt8, RedOp::kSum>, &combineWrapping<DType::kInt8, RedOp::kProd>},
      {&combineWrapping<DType::kUint8, RedOp::kSum>, &combineWrapping<DType::kUint8, RedOp::kProd>}};
  for (int t = 0; t < 2; t++) {
    for (int k = 0; k < 2; k++) {
      int rc = api.MPI_Op_create(fns[t][k], 1, &ops[t][k]);
      if (rc != MPI_SUCCESS) throw CollectiveFailure(codes::kBackendUnavailable, api.describe("MPI_Op_create", rc));
    }
  }
}

template <bool Bf16>
void createHalfOps(const MpiApi& api, MPI_Op (&ops)[5]) {
  MPI_User_function* fns[5] = {&combineHalves<Bf16, kSumPair>, &combineHalves<Bf16, kProdPair>,
                               &combineHalves<Bf16, kMinPair>, &combineHalves<Bf16, kMaxPair>,
                               &combineHalves<Bf16, kAvgPair>};
  for (int k = 0; k < 5; k++) {
    int rc = api.MPI_Op_create(fns[k], 1, &ops[k]);
    if (rc != MPI_SUCCESS) throw CollectiveFailure(codes::kBackendUnavailable, api.describe("MPI_Op_create", rc));
  }
}

const char* levelName(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "unknown";
  }
}

}  // namespace

MpiRuntime& MpiRuntime::get() {
  // Never destroyed: detached queue threads may still reach it during exit.
  static MpiRuntime* runtime = new MpiRuntime();
  return *runtime;
}

void MpiRuntime::initialize() {
  std::lock_guard<std::mutex> guard(initMu_);
  if (initialized_.load()) return;
  const MpiStatus& status = library();
  if (!status.available) {
    throw CollectiveFailure(codes::kBackendUnavailable, "the MPI engine is not available: " + status.reason);
  }
  const MpiApi& api = *status.api;
  api_ = &api;
  std::lock_guard<std::mutex> calls(mu_);
  if (finalized_) throw CollectiveFailure(codes::kAborted, "MPI was already finalized (the process is exiting)");
  int already = 0, finished = 0;
  api.MPI_Finalized(&finished);
  if (finished) throw CollectiveFailure(codes::kBackendUnavailable, "MPI was already finalized in this process");
  api.MPI_Initialized(&already);
  if (already) {
    // Someone else in this process started MPI: use it at the level it has,
    // and leave finalizing to them.
    api.MPI_Query_thread(&provided_);
  } else {
    // Open MPI's default answer to SIGSEGV, SIGBUS, SIGFPE and SIGABRT is a
    // handler that prints a stack and aborts; Node.js (V8's WebAssembly
    // bounds checks) relies on its own SIGSEGV handler. Leave the signals to
    // Node unless the user asked Open MPI for them.
    setenv("OMPI_MCA_opal_signal", "", 0);
    int rc = api.MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided_);
    if (rc != MPI_SUCCESS) {
      throw CollectiveFailure(codes::kBackendUnavailable, api.describe("MPI_Init_thread", rc));
    }
    owned_ = true;
    std::atexit(&MpiRuntime::finalizeAtExit);
  }
  if (provided_ < MPI_THREAD_SERIALIZED) {
    throw CollectiveFailure(codes::kBackendUnavailable,
                            std::string("MPI provides only ") + levelName(provided_) +
                                "; the MPI engine calls MPI from its queue threads and needs "
                                "MPI_THREAD_SERIALIZED");
  }
  int rc = api.MPI_Comm_set_errhandler(api.commWorld, api.errorsReturn);
  if (rc != MPI_SUCCESS) throw CollectiveFailure(codes::kBackendUnavailable, api.describe("MPI_Comm_set_errhandler", rc));
  createHalfOps<false>(api, halfOps_[0]);
  createHalfOps<true>(api, halfOps_[1]);
  createByteOps(api, byteOps_);
  initialized_.store(true);
}

std::unique_lock<std::mutex> MpiRuntime::lock() {
  std::unique_lock<std::mutex> held(mu_);
  if (finalized_) {
    throw CollectiveFailure(codes::kAborted, "MPI was finalized: the process is exiting");
  }
  return held;
}

void MpiRuntime::finalizeAtExit() {
  MpiRuntime& self = get();
  std::lock_guard<std::mutex> held(self.mu_);
  if (self.finalized_) return;
  self.finalized_ = true;
  // MPI_Finalize waits for every other rank; one that died would never come.
  if (self.owned_ && !self.abandoned_.load()) self.api_->MPI_Finalize();
}

MPI_Op MpiRuntime::reduceOp(DType dtype, RedOp op) const {
  if ((dtype == DType::kInt8 || dtype == DType::kUint8) && (op == RedOp::kSum || op == RedOp::kProd)) {
    return byteOps_[dtype == DType::kUint8 ? 1 : 0][op == RedOp::kProd ? 1 : 0];
  }
  if (!isHalf(dtype)) return api_->op(op);
  const int t = dtype == DType::kBFloat16 ? 1 : 0;
  switch (op) {
    case RedOp::kSum: return halfOps_[t][kSumPair];
    case RedOp::kProd: return halfOps_[t][kProdPair];
    case RedOp::kMin: return halfOps_[t][kMinPair];
    case RedOp::kMax: return halfOps_[t][kMaxPair];
    case RedOp::kAvg: return halfOps_[t][kAvgPair];
    default: throw CollectiveFailure(codes::kInternal, "no half-precision op for a bitwise reduction");
  }
}

std::string MpiRuntime::threadLevel() const { return provided_ < 0 ? "" : levelName(provided_); }

}  // namespace mpi
}  // namespace collectives
