// NCCL, loaded at run time (never linked). The types, enum values and
// signatures below are NCCL 2.x's stable C API from nccl.h, declared here so
// that building needs no NCCL headers or library. The NCCL backend calls
// these; loading checks the version first.
#pragma once

#include <climits>
#include <cstddef>
#include <string>
#include <vector>

#include "dtype.h"
#include "gpu/cuda_api.h"
#include "gpu/dynamic_library.h"
#include "gpu/lazy_library.h"

namespace collectives {
namespace gpu {

using ncclResult_t = int;
using ncclComm_t = struct ncclComm*;
struct ncclUniqueId {
  char internal[128];  // NCCL_UNIQUE_ID_BYTES
};
static_assert(sizeof(ncclUniqueId) == 128, "ncclUniqueId is 128 bytes");

constexpr ncclResult_t ncclSuccess = 0;
constexpr ncclResult_t ncclInProgress = 7;

// ncclConfig_t as NCCL 2.14 laid it out (the release that added
// ncclCommInitRankConfig and `blocking`). NCCL copies min(size, its own
// sizeof) bytes, rejects a magic other than 0xcafebeef, and takes only the
// fields that `version` had: later fields keep NCCL's defaults. The last
// member only fills the padding NCCL would read as cgaClusterSize (2.17),
// with NCCL's "unset".
struct NcclConfig {
  size_t size = sizeof(NcclConfig);
  unsigned int magic = 0xcafebeef;
  unsigned int version = 21400;
  int blocking = INT_MIN;
  int unsetCgaClusterSize = INT_MIN;
};
static_assert(sizeof(NcclConfig) == 24, "NCCL 2.14's ncclConfig_t prefix is 24 bytes");

// ncclDataType_t
enum NcclDataType : int {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
  ncclBfloat16 = 9,  // NCCL 2.10 and later
};

// ncclRedOp_t (note: max before min, unlike RedOp)
enum NcclRedOp : int { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 };

inline int ncclDataTypeOf(DType t) {
  switch (t) {
    case DType::kFloat32: return ncclFloat32;
    case DType::kFloat64: return ncclFloat64;
    case DType::kFloat16: return ncclFloat16;
    case DType::kBFloat16: return ncclBfloat16;
    case DType::kInt8: return ncclInt8;
    case DType::kUint8: return ncclUint8;
    case DType::kInt32: return ncclInt32;
    case DType::kInt64: return ncclInt64;
  }
  return -1;
}

inline int ncclRedOpOf(RedOp op) {
  switch (op) {
    case RedOp::kSum: return ncclSum;
    case RedOp::kProd: return ncclProd;
    case RedOp::kMin: return ncclMin;
    case RedOp::kMax: return ncclMax;
    case RedOp::kAvg: return ncclAvg;
    // NCCL has no bitwise reductions; device calls refuse them before this.
    case RedOp::kBand:
    case RedOp::kBor:
    case RedOp::kBxor: break;
  }
  return -1;
}

// The oldest NCCL accepted: 2.12, a floor every current distribution and pip
// wheel clears, with ncclAvg and bfloat16 (both 2.10) which RedOp and DType need.
constexpr int kNcclMinimumVersion = 21200;

struct NcclApi {
  ncclResult_t (*ncclGetVersion)(int* version);
  ncclResult_t (*ncclGetUniqueId)(ncclUniqueId* id);
  ncclResult_t (*ncclCommInitRank)(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank);
  // NCCL 2.14 and later; null before.
  ncclResult_t (*ncclCommInitRankConfig)(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank,
                                         NcclConfig* config);
  ncclResult_t (*ncclCommDestroy)(ncclComm_t comm);
  ncclResult_t (*ncclCommAbort)(ncclComm_t comm);
  ncclResult_t (*ncclCommGetAsyncError)(ncclComm_t comm, ncclResult_t* asyncError);
  ncclResult_t (*ncclCommCount)(ncclComm_t comm, int* count);
  ncclResult_t (*ncclCommUserRank)(ncclComm_t comm, int* rank);
  const char* (*ncclGetErrorString)(ncclResult_t result);
  ncclResult_t (*ncclAllReduce)(const void* send, void* recv, size_t count, int dtype, int op,
                                ncclComm_t comm, cudaStream_t stream);
  ncclResult_t (*ncclReduceScatter)(const void* send, void* recv, size_t recvCount, int dtype,
                                    int op, ncclComm_t comm, cudaStream_t stream);
  ncclResult_t (*ncclAllGather)(const void* send, void* recv, size_t sendCount, int dtype,
                                ncclComm_t comm, cudaStream_t stream);
  ncclResult_t (*ncclBroadcast)(const void* send, void* recv, size_t count, int dtype, int root,
                                ncclComm_t comm, cudaStream_t stream);
  ncclResult_t (*ncclReduce)(const void* send, void* recv, size_t count, int dtype, int op,
                             int root, ncclComm_t comm, cudaStream_t stream);
  ncclResult_t (*ncclSend)(const void* send, size_t count, int dtype, int peer, ncclComm_t comm,
                           cudaStream_t stream);
  ncclResult_t (*ncclRecv)(void* recv, size_t count, int dtype, int peer, ncclComm_t comm,
                           cudaStream_t stream);
  // NCCL 2.28 and later; null before (all-to-all is then grouped send/recv).
  ncclResult_t (*ncclAlltoAll)(const void* send, void* recv, size_t count, int dtype,
                               ncclComm_t comm, cudaStream_t stream);
  ncclResult_t (*ncclGroupStart)();
  ncclResult_t (*ncclGroupEnd)();

  std::string describe(const char* what, ncclResult_t result) const;
};

struct NcclStatus : LibraryStatus<NcclApi> {
  int version = 0;  // NCCL_VERSION_CODE, e.g. 22105
};

// Loads NCCL the first time it is called (thread-safe).
const NcclStatus& nccl();

// "2.21.5" from 22105 (or from 2.8's 2804).
std::string ncclVersionString(int code);

}  // namespace gpu
}  // namespace collectives
