#include "mpi/mpi_api.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "errors.h"

namespace collectives {
namespace mpi {
namespace {

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

gpu::LibrarySearch mpiSearch() {
  gpu::LibrarySearch s;
  // Open MPI 3.x-5.x all give libmpi the soname libmpi.so.40.
  s.names = {"libmpi.so.40"};
  s.overrideEnv = "COLLECTIVES_MPI_LIBRARY";
  // Open MPI opens its components (mca_btl_vader.so, ...) with dlopen, and
  // they resolve libmpi's and libopen-pal's symbols through the global scope.
  s.global = true;
  // Where an installation says it is, then the usual prefixes: Debian and
  // Ubuntu keep libmpi in the multiarch folder, with the components under
  // openmpi/lib; Fedora and RHEL under /usr/lib64/openmpi/lib.
  for (const char* var : {"OPAL_PREFIX", "MPI_HOME", "OMPI_HOME"}) {
    std::string root = envOr(var);
    if (!root.empty()) s.firstDirs.push_back(root + "/lib");
  }
  for (const char* d : {"/usr/lib/x86_64-linux-gnu/openmpi/lib", "/usr/lib/aarch64-linux-gnu/openmpi/lib",
                        "/usr/lib64/openmpi/lib", "/opt/openmpi/lib"}) {
    s.firstDirs.push_back(d);
  }
  return s;
}

template <typename T>
void bindObject(const gpu::DynamicLibrary& lib, T& handle, const char* name) {
  handle = reinterpret_cast<T>(lib.symbol(name));
}

// "Open MPI v4.1.4, package: ..." -> "4.1.4".
std::string parseVersion(const std::string& line) {
  size_t v = line.find(" v");
  if (v == std::string::npos) return "";
  size_t start = v + 2, end = start;
  while (end < line.size() && (std::isdigit(static_cast<unsigned char>(line[end])) || line[end] == '.')) end++;
  return line.substr(start, end - start);
}

bool bindMpi(const gpu::DynamicLibrary& lib, MpiApi& api, MpiStatus& s) {
  COLLECTIVES_BIND(lib, api, MPI_Get_library_version);
  char text[MPI_MAX_LIBRARY_VERSION_STRING + 1] = {0};
  int length = 0;
  // Callable before MPI_Init (MPI 3.0).
  if (api.MPI_Get_library_version(text, &length) != MPI_SUCCESS) {
    s.reason = "libmpi at " + s.library + ": MPI_Get_library_version failed";
    return false;
  }
  std::string full(text, size_t(std::max(0, std::min(length, MPI_MAX_LIBRARY_VERSION_STRING))));
  s.libraryVersion = full.substr(0, full.find_first_of(",\n"));
  if (full.rfind("Open MPI", 0) != 0) {
    s.reason = "libmpi at " + s.library + " is \"" + s.libraryVersion +
               "\"; the MPI engine needs Open MPI (its handles are pointers; MPICH's are integers)";
    return false;
  }
  s.version = parseVersion(full);
  COLLECTIVES_BIND(lib, api, MPI_Initialized);
  COLLECTIVES_BIND(lib, api, MPI_Finalized);
  COLLECTIVES_BIND(lib, api, MPI_Init_thread);
  COLLECTIVES_BIND(lib, api, MPI_Query_thread);
  COLLECTIVES_BIND(lib, api, MPI_Finalize);
  COLLECTIVES_BIND(lib, api, MPI_Error_string);
  COLLECTIVES_BIND(lib, api, MPI_Error_class);
  COLLECTIVES_BIND(lib, api, MPI_Comm_rank);
  COLLECTIVES_BIND(lib, api, MPI_Comm_size);
  COLLECTIVES_BIND(lib, api, MPI_Comm_idup);
  COLLECTIVES_BIND(lib, api, MPI_Comm_free);
  COLLECTIVES_BIND(lib, api, MPI_Comm_group);
  COLLECTIVES_BIND(lib, api, MPI_Group_incl);
  COLLECTIVES_BIND(lib, api, MPI_Group_free);
  COLLECTIVES_BIND(lib, api, MPI_Comm_create_group);
  COLLECTIVES_BIND(lib, api, MPI_Comm_set_errhandler);
  COLLECTIVES_BIND(lib, api, MPI_Op_create);
  COLLECTIVES_BIND(lib, api, MPI_Test);
  COLLECTIVES_BIND(lib, api, MPI_Cancel);
  COLLECTIVES_BIND(lib, api, MPI_Request_free);
  COLLECTIVES_BIND(lib, api, MPI_Iallreduce);
  COLLECTIVES_BIND(lib, api, MPI_Ireduce_scatter_block);
  COLLECTIVES_BIND(lib, api, MPI_Iallgather);
  COLLECTIVES_BIND(lib, api, MPI_Ibcast);
  COLLECTIVES_BIND(lib, api, MPI_Ireduce);
  COLLECTIVES_BIND(lib, api, MPI_Ibarrier);
  COLLECTIVES_BIND(lib, api, MPI_Ialltoall);
  COLLECTIVES_BIND(lib, api, MPI_Ialltoallv);
  COLLECTIVES_BIND(lib, api, MPI_Isend);
  COLLECTIVES_BIND(lib, api, MPI_Irecv);
  bindObject(lib, api.commWorld, "ompi_mpi_comm_world");
  bindObject(lib, api.requestNull, "ompi_request_null");
  bindObject(lib, api.errorsReturn, "ompi_mpi_errors_return");
  bindObject(lib, api.byte, "ompi_mpi_byte");
  bindObject(lib, api.float32, "ompi_mpi_float");
  bindObject(lib, api.float64, "ompi_mpi_double");
  bindObject(lib, api.int8, "ompi_mpi_int8_t");
  bindObject(lib, api.uint8, "ompi_mpi_uint8_t");
  bindObject(lib, api.int32, "ompi_mpi_int32_t");
  bindObject(lib, api.int64, "ompi_mpi_int64_t");
  bindObject(lib, api.uint16, "ompi_mpi_uint16_t");
  bindObject(lib, api.sum, "ompi_mpi_op_sum");
  bindObject(lib, api.prod, "ompi_mpi_op_prod");
  bindObject(lib, api.min, "ompi_mpi_op_min");
  bindObject(lib, api.max, "ompi_mpi_op_max");
  bindObject(lib, api.band, "ompi_mpi_op_band");
  bindObject(lib, api.bor, "ompi_mpi_op_bor");
  bindObject(lib, api.bxor, "ompi_mpi_op_bxor");
  return true;
}

gpu::LazyLibrary<MpiStatus, MpiApi>::Spec mpiSpec() {
  gpu::LibrarySearch search = mpiSearch();
  const std::string fix = "install Open MPI (e.g. apt-get install openmpi-bin libopenmpi-dev) or set " +
                          search.overrideEnv;
  return {std::move(search), "libmpi.so.40 (Open MPI)", fix,
          " (not Open MPI, or a release older than 3.0)", bindMpi};
}

}  // namespace

std::string MpiApi::describe(const char* what, int code) const {
  char text[MPI_MAX_ERROR_STRING + 1] = {0};
  int length = 0;
  std::string message = "unknown";
  if (MPI_Error_string && MPI_Error_string(code, text, &length) == MPI_SUCCESS && length > 0) {
    message.assign(text, size_t(std::min(length, MPI_MAX_ERROR_STRING)));
  }
  return std::string(what) + " failed (MPI error " + std::to_string(code) + ": " + message + ")";
}

MPI_Datatype MpiApi::datatype(DType dtype) const {
  switch (dtype) {
    case DType::kFloat32: return float32;
    case DType::kFloat64: return float64;
    case DType::kFloat16:
    case DType::kBFloat16: return uint16;
    case DType::kInt8: return int8;
    case DType::kUint8: return uint8;
    case DType::kInt32: return int32;
    case DType::kInt64: return int64;
  }
  throw CollectiveFailure(codes::kInternal, "unexpected dtype");
}

MPI_Op MpiApi::op(RedOp o) const {
  switch (o) {
    case RedOp::kSum:
    case RedOp::kAvg: return sum;
    case RedOp::kProd: return prod;
    case RedOp::kMin: return min;
    case RedOp::kMax: return max;
    case RedOp::kBand: return band;
    case RedOp::kBor: return bor;
    case RedOp::kBxor: return bxor;
  }
  throw CollectiveFailure(codes::kInternal, "unexpected reduction op");
}

const MpiStatus& library() {
  static gpu::LazyLibrary<MpiStatus, MpiApi> lib(mpiSpec());
  return lib.status();
}

}  // namespace mpi
}  // namespace collectives
