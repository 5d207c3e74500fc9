// The CUDA runtime, loaded at run time (never linked). The types and
// signatures below are the documented C API of cuda_runtime_api.h, declared
// here so that building needs no CUDA headers: enums travel as int, streams
// and events as opaque pointers. Only what DeviceBuffer and the NCCL backend
// call is declared.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "gpu/dynamic_library.h"
#include "gpu/lazy_library.h"

namespace collectives {
namespace gpu {

using cudaError_t = int;
using cudaStream_t = struct CUstream_st*;
using cudaEvent_t = struct CUevent_st*;

constexpr cudaError_t cudaSuccess = 0;
constexpr cudaError_t cudaErrorNotReady = 600;
// cudaMemcpyKind
constexpr int cudaMemcpyHostToDevice = 1;
constexpr int cudaMemcpyDeviceToHost = 2;
constexpr int cudaMemcpyDeviceToDevice = 3;
constexpr unsigned cudaStreamNonBlocking = 0x01;
constexpr unsigned cudaEventDisableTiming = 0x02;

struct CudaApi {
  cudaError_t (*cudaGetDeviceCount)(int* count);
  cudaError_t (*cudaGetDevice)(int* device);
  cudaError_t (*cudaSetDevice)(int device);
  cudaError_t (*cudaMalloc)(void** ptr, size_t bytes);
  cudaError_t (*cudaFree)(void* ptr);
  cudaError_t (*cudaMemcpy)(void* dst, const void* src, size_t bytes, int kind);
  cudaError_t (*cudaMemcpyAsync)(void* dst, const void* src, size_t bytes, int kind,
                                 cudaStream_t stream);
  cudaError_t (*cudaMemset)(void* ptr, int value, size_t bytes);
  cudaError_t (*cudaMemsetAsync)(void* ptr, int value, size_t bytes, cudaStream_t stream);
  cudaError_t (*cudaDeviceSynchronize)();
  const char* (*cudaGetErrorString)(cudaError_t error);
  cudaError_t (*cudaRuntimeGetVersion)(int* version);
  cudaError_t (*cudaDriverGetVersion)(int* version);
  cudaError_t (*cudaStreamCreateWithFlags)(cudaStream_t* stream, unsigned flags);
  cudaError_t (*cudaStreamDestroy)(cudaStream_t stream);
  cudaError_t (*cudaStreamSynchronize)(cudaStream_t stream);
  cudaError_t (*cudaEventCreateWithFlags)(cudaEvent_t* event, unsigned flags);
  cudaError_t (*cudaEventRecord)(cudaEvent_t event, cudaStream_t stream);
  cudaError_t (*cudaEventQuery)(cudaEvent_t event);
  cudaError_t (*cudaEventSynchronize)(cudaEvent_t event);
  cudaError_t (*cudaEventDestroy)(cudaEvent_t event);

  // "what (error N: message)" for a failed call.
  std::string describe(const char* what, cudaError_t error) const;
};

// What loading found. `api` is set when the library loaded with every symbol;
// `available` also needs at least one device.
struct CudaStatus : LibraryStatus<CudaApi> {
  int runtimeVersion = 0;    // e.g. 12040
  int driverVersion = 0;     // 0 without a driver
  int devices = 0;
};

// Loads the runtime the first time it is called (thread-safe); later calls
// return the same result.
const CudaStatus& cuda();

// "12.4" from 12040.
std::string cudaVersionString(int version);

}  // namespace gpu
}  // namespace collectives
