#include "gpu/nccl_api.h"

#include "gpu/lazy_library.h"

namespace collectives {
namespace gpu {
namespace {

LibrarySearch ncclSearch() {
  LibrarySearch s;
  s.names = {"libnccl.so.2"};
  s.overrideEnv = "COLLECTIVES_NCCL_LIBRARY";
  s.wheelDirs = {"nvidia/nccl/lib", "nvidia/cu13/lib"};
  return s;
}

// A symbol that later NCCL releases added: null where the loaded one lacks it.
template <typename F>
void bindOptional(const DynamicLibrary& lib, F*& fn, const char* name) {
  try {
    bindSymbol(lib, fn, name);
  } catch (const MissingSymbol&) {
    fn = nullptr;
  }
}

bool bindNccl(const DynamicLibrary& lib, NcclApi& api, NcclStatus& s) {
  // The version first: an old NCCL may lack later symbols, and saying
  // "too old" is more useful than naming the first missing one.
  COLLECTIVES_BIND(lib, api, ncclGetVersion);
  if (api.ncclGetVersion(&s.version) != ncclSuccess) {
    s.reason = "libnccl.so.2 at " + s.library + ": ncclGetVersion failed";
    return false;
  }
  if (s.version < kNcclMinimumVersion) {
    s.reason = "libnccl.so.2 at " + s.library + " is NCCL " + ncclVersionString(s.version) +
               "; collectives needs " + ncclVersionString(kNcclMinimumVersion) + " or later";
    return false;
  }
  COLLECTIVES_BIND(lib, api, ncclGetUniqueId);
  COLLECTIVES_BIND(lib, api, ncclCommInitRank);
  COLLECTIVES_BIND(lib, api, ncclCommDestroy);
  COLLECTIVES_BIND(lib, api, ncclCommAbort);
  COLLECTIVES_BIND(lib, api, ncclCommGetAsyncError);
  COLLECTIVES_BIND(lib, api, ncclCommCount);
  COLLECTIVES_BIND(lib, api, ncclCommUserRank);
  COLLECTIVES_BIND(lib, api, ncclGetErrorString);
  COLLECTIVES_BIND(lib, api, ncclAllReduce);
  COLLECTIVES_BIND(lib, api, ncclReduceScatter);
  COLLECTIVES_BIND(lib, api, ncclAllGather);
  COLLECTIVES_BIND(lib, api, ncclBroadcast);
  COLLECTIVES_BIND(lib, api, ncclReduce);
  COLLECTIVES_BIND(lib, api, ncclSend);
  COLLECTIVES_BIND(lib, api, ncclRecv);
  COLLECTIVES_BIND(lib, api, ncclGroupStart);
  COLLECTIVES_BIND(lib, api, ncclGroupEnd);
  if (s.version >= 21400) bindOptional(lib, api.ncclCommInitRankConfig, "ncclCommInitRankConfig");
  if (s.version >= 22800) bindOptional(lib, api.ncclAlltoAll, "ncclAlltoAll");
  return true;
}

LazyLibrary<NcclStatus, NcclApi>::Spec ncclSpec() {
  LibrarySearch search = ncclSearch();
  const std::string fix = "install NCCL (e.g. pip install nvidia-nccl-cu12) or set " + search.overrideEnv;
  return {std::move(search), "libnccl.so.2", fix, "", bindNccl};
}

}  // namespace

std::string NcclApi::describe(const char* what, ncclResult_t result) const {
  const char* message = ncclGetErrorString ? ncclGetErrorString(result) : nullptr;
  return std::string(what) + " failed (NCCL error " + std::to_string(result) + ": " +
         (message ? message : "unknown") + ")";
}

const NcclStatus& nccl() {
  static LazyLibrary<NcclStatus, NcclApi> library(ncclSpec());
  return library.status();
}

std::string ncclVersionString(int code) {
  if (code <= 0) return "";
  // NCCL_VERSION(X,Y,Z) is X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z after.
  int major, minor;
  if (code >= 10000) {
    major = code / 10000;
    minor = (code % 10000) / 100;
  } else {
    major = code / 1000;
    minor = (code % 1000) / 100;
  }
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}

}  // namespace gpu
}  // namespace collectives
