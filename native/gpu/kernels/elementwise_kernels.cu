// The training layer's elementwise kernels: grid-stride loops over the
// per-element functions of ops/elementwise_math.h (the host's math).
#include <cuda_runtime.h>

#include "../../ops/elementwise_math.h"
#include "kernels.h"
#include "launch.cuh"

namespace collectives {
namespace gpu {
namespace {

#define GRID_STRIDE(i, n)                                                       \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); \
       i += size_t(gridDim.x) * blockDim.x)

__global__ void adamwKernel(ops::AdamWScalars s, float* __restrict__ p,
                            const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, size_t n) {
  GRID_STRIDE(i, n) {
    float pi = p[i], mi = m[i], vi = v[i];
    ops::adamwElement(s, pi, g[i], mi, vi);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void nesterovKernel(float lr, float mu, float* __restrict__ p,
                               const float* __restrict__ d, float* __restrict__ buf, size_t n) {
  GRID_STRIDE(i, n) {
    float pi = p[i], bi = buf[i];
    ops::nesterovElement(lr, mu, pi, d[i], bi);
    p[i] = pi;
    buf[i] = bi;
  }
}

__global__ void axpyKernel(size_t n, float a, const float* x, float* y) {
  GRID_STRIDE(i, n) { y[i] = ops::axpyElement(a, x[i], y[i]); }
}

__global__ void scaleKernel(size_t n, float a, float* x) {
  GRID_STRIDE(i, n) { x[i] = ops::scaleElement(a, x[i]); }
}

__global__ void divideKernel(size_t n, float d, float* x) {
  GRID_STRIDE(i, n) { x[i] = ops::divideElement(d, x[i]); }
}

__global__ void castKernel(const void* in, int inType, void* out, int outType, size_t n) {
  GRID_STRIDE(i, n) { ops::storeFromFloat(out, i, outType, ops::loadAsFloat(in, i, inType)); }
}

}  // namespace
}  // namespace gpu
}  // namespace collectives

using namespace collectives::gpu;

extern "C" int collectives_cuda_adamw(float* param, const float* grad, float* expAvg,
                                      float* expAvgSq, size_t n, double lr, double beta1,
                                      double beta2, double eps, double weightDecay,
                                      int64_t step, void* stream) {
  if (step < 1 || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
    return COLLECTIVES_CUDA_EINVAL;
  }
  if (n == 0) return 0;
  if (!param || !grad || !expAvg || !expAvgSq) return COLLECTIVES_CUDA_EINVAL;
  const auto s = collectives::ops::adamwScalars(lr, beta1, beta2, eps, weightDecay, double(step));
  adamwKernel<<<gridFor(n), kThreads, 0, asStream(stream)>>>(s, param, grad, expAvg, expAvgSq, n);
  return launchStatus();
}

extern "C" int collectives_cuda_nesterov(float* param, const float* delta, float* buf, size_t n,
                                         float lr, float momentum, void* stream) {
  if (n == 0) return 0;
  if (!param || !delta || !buf) return COLLECTIVES_CUDA_EINVAL;
  nesterovKernel<<<gridFor(n), kThreads, 0, asStream(stream)>>>(lr, momentum, param, delta, buf, n);
  return launchStatus();
}

extern "C" int collectives_cuda_axpy(size_t n, float a, const float* x, float* y, void* stream) {
  if (n == 0) return 0;
  if (!x || !y) return COLLECTIVES_CUDA_EINVAL;
  axpyKernel<<<gridFor(n), kThreads, 0, asStream(stream)>>>(n, a, x, y);
  return launchStatus();
}

extern "C" int collectives_cuda_scale(size_t n, float a, float* x, void* stream) {
  if (n == 0) return 0;
  if (!x) return COLLECTIVES_CUDA_EINVAL;
  scaleKernel<<<gridFor(n), kThreads, 0, asStream(stream)>>>(n, a, x);
  return launchStatus();
}

extern "C" int collectives_cuda_divide(size_t n, float d, float* x, void* stream) {
  if (n == 0) return 0;
  if (!x || d == 0.0f) return COLLECTIVES_CUDA_EINVAL;
  divideKernel<<<gridFor(n), kThreads, 0, asStream(stream)>>>(n, d, x);
  return launchStatus();
}

extern "C" int collectives_cuda_cast(const void* in, int inDtype, void* out, int outDtype,
                                     size_t n, void* stream) {
  if (!validFloatType(inDtype) || !validFloatType(outDtype)) return COLLECTIVES_CUDA_EINVAL;
  if (n == 0) return 0;
  if (!in || !out) return COLLECTIVES_CUDA_EINVAL;
  castKernel<<<gridFor(n), kThreads, 0, asStream(stream)>>>(in, inDtype, out, outDtype, n);
  return launchStatus();
}

extern "C" int collectives_cuda_api_version(void) { return COLLECTIVES_CUDA_API_VERSION; }

extern "C" const char* collectives_cuda_error_string(int code) {
  if (code == 0) return "success";
  if (code == COLLECTIVES_CUDA_EINVAL) return "invalid argument (a code, size or pointer)";
  return cudaGetErrorString(cudaError_t(code));
}
