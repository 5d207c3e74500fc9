// Open MPI, loaded at run time (never linked), so that one built addon loads
// on a machine without MPI. The declarations below are the few parts of
// mpi.h the MPI engine uses, as Open MPI's ABI has them (4.x and 5.x): every
// handle is a pointer, and the predefined ones (MPI_COMM_WORLD, MPI_FLOAT,
// MPI_SUM, ...) are the addresses of global objects that libmpi exports
// (ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_op_sum, ...), resolved here
// with dlsym. MPICH and its derivatives use integer handles instead, so they
// are refused by name rather than misread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "dtype.h"
#include "gpu/lazy_library.h"

namespace collectives {
namespace mpi {

using MPI_Comm = struct ompi_communicator_t*;
using MPI_Datatype = struct ompi_datatype_t*;
using MPI_Op = struct ompi_op_t*;
using MPI_Request = struct ompi_request_t*;
using MPI_Group = struct ompi_group_t*;
using MPI_Errhandler = struct ompi_errhandler_t*;
using MPI_User_function = void(void* invec, void* inoutvec, int* len, MPI_Datatype* datatype);

// Open MPI's MPI_Status (mpi.h): three public fields, then its own two.
struct MPI_Status {
  int MPI_SOURCE;
  int MPI_TAG;
  int MPI_ERROR;
  int _cancelled;
  size_t _ucount;
};

constexpr int MPI_SUCCESS = 0;
constexpr int MPI_THREAD_SINGLE = 0;
constexpr int MPI_THREAD_FUNNELED = 1;
constexpr int MPI_THREAD_SERIALIZED = 2;
constexpr int MPI_THREAD_MULTIPLE = 3;
constexpr int MPI_MAX_ERROR_STRING = 256;
// Error classes the engine tells apart. The ULFM ones (Open MPI 5, or 4.x
// built with fault tolerance) report a failed process.
constexpr int MPI_ERR_TRUNCATE = 15;
constexpr int MPIX_ERR_PROC_FAILED = 75;
constexpr int MPIX_ERR_PROC_FAILED_PENDING = 76;
constexpr int MPIX_ERR_REVOKED = 77;
constexpr int MPI_MAX_LIBRARY_VERSION_STRING = 256;
inline void* const MPI_IN_PLACE = reinterpret_cast<void*>(1);
inline MPI_Status* const MPI_STATUS_IGNORE = nullptr;

// The functions the engine calls, with their mpi.h signatures.
struct MpiApi {
  int (*MPI_Get_library_version)(char* version, int* length);
  int (*MPI_Initialized)(int* flag);
  int (*MPI_Finalized)(int* flag);
  int (*MPI_Init_thread)(int* argc, char*** argv, int required, int* provided);
  int (*MPI_Query_thread)(int* provided);
  int (*MPI_Finalize)();
  int (*MPI_Error_string)(int code, char* text, int* length);
  int (*MPI_Error_class)(int code, int* errorClass);
  int (*MPI_Comm_rank)(MPI_Comm comm, int* rank);
  int (*MPI_Comm_size)(MPI_Comm comm, int* size);
  int (*MPI_Comm_idup)(MPI_Comm comm, MPI_Comm* out, MPI_Request* request);
  int (*MPI_Comm_free)(MPI_Comm* comm);
  int (*MPI_Comm_group)(MPI_Comm comm, MPI_Group* group);
  int (*MPI_Group_incl)(MPI_Group group, int n, const int* ranks, MPI_Group* out);
  int (*MPI_Group_free)(MPI_Group* group);
  int (*MPI_Comm_create_group)(MPI_Comm comm, MPI_Group group, int tag, MPI_Comm* out);
  int (*MPI_Comm_set_errhandler)(MPI_Comm comm, MPI_Errhandler handler);
  int (*MPI_Op_create)(MPI_User_function* fn, int commute, MPI_Op* op);
  int (*MPI_Test)(MPI_Request* request, int* flag, MPI_Status* status);
  int (*MPI_Cancel)(MPI_Request* request);
  int (*MPI_Request_free)(MPI_Request* request);
  int (*MPI_Iallreduce)(const void* in, void* out, int count, MPI_Datatype type, MPI_Op op,
                        MPI_Comm comm, MPI_Request* request);
  int (*MPI_Ireduce_scatter_block)(const void* in, void* out, int count, MPI_Datatype type,
                                   MPI_Op op, MPI_Comm comm, MPI_Request* request);
  int (*MPI_Iallgather)(const void* in, int inCount, MPI_Datatype inType, void* out,
                        int outCount, MPI_Datatype outType, MPI_Comm comm, MPI_Request* request);
  int (*MPI_Ibcast)(void* data, int count, MPI_Datatype type, int root, MPI_Comm comm,
                    MPI_Request* request);
  int (*MPI_Ireduce)(const void* in, void* out, int count, MPI_Datatype type, MPI_Op op,
                     int root, MPI_Comm comm, MPI_Request* request);
  int (*MPI_Ibarrier)(MPI_Comm comm, MPI_Request* request);
  int (*MPI_Ialltoall)(const void* in, int inCount, MPI_Datatype inType, void* out,
                       int outCount, MPI_Datatype outType, MPI_Comm comm, MPI_Request* request);
  int (*MPI_Ialltoallv)(const void* in, const int* inCounts, const int* inDispls,
                        MPI_Datatype inType, void* out, const int* outCounts,
                        const int* outDispls, MPI_Datatype outType, MPI_Comm comm,
                        MPI_Request* request);
  int (*MPI_Isend)(const void* data, int count, MPI_Datatype type, int dest, int tag,
                   MPI_Comm comm, MPI_Request* request);
  int (*MPI_Irecv)(void* data, int count, MPI_Datatype type, int source, int tag,
                   MPI_Comm comm, MPI_Request* request);

  // The predefined handles: addresses of libmpi's global objects.
  MPI_Comm commWorld;
  // MPI_REQUEST_NULL, which a completed request is set to.
  MPI_Request requestNull;
  MPI_Errhandler errorsReturn;
  MPI_Datatype byte, float32, float64, int8, uint8, int32, int64, uint16;
  MPI_Op sum, prod, min, max, band, bor, bxor;

  // "MPI_Iallreduce failed (MPI error 15: MPI_ERR_TRUNCATE: message truncated)".
  std::string describe(const char* what, int code) const;
  // The datatype of `dtype`'s elements (half types: 16-bit integers, for the
  // engine's own reduction op).
  MPI_Datatype datatype(DType dtype) const;
  // The predefined op for `op` (AVG: SUM; the engine divides).
  MPI_Op op(RedOp op) const;
};

struct MpiStatus : gpu::LibraryStatus<MpiApi> {
  // "4.1.4": the first line of MPI_Get_library_version, parsed.
  std::string version;
  // That first line as Open MPI gives it ("Open MPI v4.1.4, package: ...").
  std::string libraryVersion;
};

// Loads libmpi on the first call (thread-safe); later calls return the same
// status. Loading neither initializes MPI nor starts anything.
const MpiStatus& library();

}  // namespace mpi
}  // namespace collectives
