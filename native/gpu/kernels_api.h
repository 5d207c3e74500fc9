// libcollectives_cuda (native/gpu/kernels/kernels.h), loaded at run time like
// the CUDA runtime and NCCL: the addon never links it, so one prebuilt addon
// loads without CUDA. It is searched the first time a device operation (or
// backends()) needs it: COLLECTIVES_CUDA_KERNELS when set (the only
// candidate then), else the folder of the addon file itself (build/Release,
// prebuilds/linux-x64, where the build and the prebuild put it), else the
// usual library folders and the dynamic loader's search.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gpu/dynamic_library.h"
#include "gpu/lazy_library.h"

namespace collectives {
namespace gpu {

// The API version this addon is written against (kernels.h's
// COLLECTIVES_CUDA_API_VERSION); a library of another version is refused.
constexpr int kKernelsApiVersion = 1;
constexpr int kKernelsEinval = -1;

// kernels.h's functions, under the names of that header.
struct KernelsApi {
  int (*collectives_cuda_api_version)();
  const char* (*collectives_cuda_error_string)(int code);
  int (*collectives_cuda_quantize)(const void* in, int dtype, size_t count, int format,
                                   size_t blockSize, int stochastic, uint64_t key,
                                   uint64_t indexBase, float* residual, void* out,
                                   void* stream);
  int (*collectives_cuda_dequantize)(const void* in, size_t count, int format, size_t blockSize,
                                     int dtype, void* out, void* stream);
  int (*collectives_cuda_dequantize_accumulate)(const void* in, size_t count, int format,
                                                size_t blockSize, float* acc, void* stream);
  int (*collectives_cuda_adamw)(float* param, const float* grad, float* expAvg, float* expAvgSq,
                                size_t n, double lr, double beta1, double beta2, double eps,
                                double weightDecay, int64_t step, void* stream);
  int (*collectives_cuda_nesterov)(float* param, const float* delta, float* buf, size_t n,
                                   float lr, float momentum, void* stream);
  int (*collectives_cuda_axpy)(size_t n, float a, const float* x, float* y, void* stream);
  int (*collectives_cuda_scale)(size_t n, float a, float* x, void* stream);
  int (*collectives_cuda_divide)(size_t n, float d, float* x, void* stream);
  int (*collectives_cuda_cast)(const void* in, int inDtype, void* out, int outDtype, size_t n,
                               void* stream);

  // "what failed (error N: message)" for a code these functions returned.
  std::string describe(const char* what, int code) const;
};

struct KernelsStatus : LibraryStatus<KernelsApi> {
  int version = 0;  // its collectives_cuda_api_version()
};

// Loads the library the first time it is called (thread-safe); later calls
// return the same result.
const KernelsStatus& kernels();

}  // namespace gpu
}  // namespace collectives
