#include "gpu/cuda_api.h"

#include "gpu/lazy_library.h"

namespace collectives {
namespace gpu {
namespace {

LibrarySearch cudaSearch() {
  LibrarySearch s;
  s.names = {"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"};
  s.overrideEnv = "COLLECTIVES_CUDA_LIBRARY";
  s.wheelDirs = {"nvidia/cuda_runtime/lib", "nvidia/cu13/lib"};
  return s;
}

bool bindCuda(const DynamicLibrary& lib, CudaApi& api, CudaStatus&) {
  COLLECTIVES_BIND(lib, api, cudaGetDeviceCount);
  COLLECTIVES_BIND(lib, api, cudaGetDevice);
  COLLECTIVES_BIND(lib, api, cudaSetDevice);
  COLLECTIVES_BIND(lib, api, cudaMalloc);
  COLLECTIVES_BIND(lib, api, cudaFree);
  COLLECTIVES_BIND(lib, api, cudaMemcpy);
  COLLECTIVES_BIND(lib, api, cudaMemcpyAsync);
  COLLECTIVES_BIND(lib, api, cudaMemset);
  COLLECTIVES_BIND(lib, api, cudaMemsetAsync);
  COLLECTIVES_BIND(lib, api, cudaDeviceSynchronize);
  COLLECTIVES_BIND(lib, api, cudaGetErrorString);
  COLLECTIVES_BIND(lib, api, cudaRuntimeGetVersion);
  COLLECTIVES_BIND(lib, api, cudaDriverGetVersion);
  COLLECTIVES_BIND(lib, api, cudaStreamCreateWithFlags);
  COLLECTIVES_BIND(lib, api, cudaStreamDestroy);
  COLLECTIVES_BIND(lib, api, cudaStreamSynchronize);
  COLLECTIVES_BIND(lib, api, cudaEventCreateWithFlags);
  COLLECTIVES_BIND(lib, api, cudaEventRecord);
  COLLECTIVES_BIND(lib, api, cudaEventQuery);
  COLLECTIVES_BIND(lib, api, cudaEventSynchronize);
  COLLECTIVES_BIND(lib, api, cudaEventDestroy);
  return true;
}

// A runtime that loads is usable only with a driver and a device.
bool hasDevices(CudaStatus& s) {
  const CudaApi& api = *s.api;
  api.cudaRuntimeGetVersion(&s.runtimeVersion);
  if (api.cudaDriverGetVersion(&s.driverVersion) != cudaSuccess) s.driverVersion = 0;
  int count = 0;
  cudaError_t err = api.cudaGetDeviceCount(&count);
  std::string found = s.library.substr(s.library.find_last_of('/') + 1) + ": found at " + s.library;
  if (err != cudaSuccess) {
    s.reason = found + " but " + api.describe("cudaGetDeviceCount", err);
    return false;
  }
  if (count <= 0) {
    s.reason = found + " but cudaGetDeviceCount reports no devices";
    return false;
  }
  s.devices = count;
  return true;
}

LazyLibrary<CudaStatus, CudaApi>::Spec cudaSpec() {
  LibrarySearch search = cudaSearch();
  const std::string what = search.names.front() + " (or another libcudart)";
  const std::string fix =
      "install the CUDA runtime (e.g. pip install nvidia-cuda-runtime-cu12) or set " +
      search.overrideEnv;
  return {std::move(search), what, fix, " (the CUDA runtime is too old or not a CUDA runtime)",
          bindCuda, hasDevices};
}

}  // namespace

std::string CudaApi::describe(const char* what, cudaError_t error) const {
  const char* message = cudaGetErrorString ? cudaGetErrorString(error) : nullptr;
  return std::string(what) + " failed (error " + std::to_string(error) + ": " +
         (message ? message : "unknown") + ")";
}

const CudaStatus& cuda() {
  static LazyLibrary<CudaStatus, CudaApi> library(cudaSpec());
  return library.status();
}

std::string cudaVersionString(int version) {
  if (version <= 0) return "";
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

}  // namespace gpu
}  // namespace collectives
