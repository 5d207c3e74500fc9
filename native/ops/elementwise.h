// The training layer's elementwise operations on host memory: tight loops
// over elementwise_math.h (the same per-element math as the CUDA kernels).
// Arrays of one call must not overlap, except axpy's x and y being the same.
#pragma once

#include <cstddef>

#include "elementwise_math.h"

namespace collectives {
namespace ops {

void adamwHost(const AdamWScalars& s, float* param, const float* grad, float* expAvg,
               float* expAvgSq, size_t n);
void nesterovHost(float lr, float momentum, float* param, const float* delta, float* buf,
                  size_t n);
void axpyHost(float a, const float* x, float* y, size_t n);
void scaleHost(float a, float* x, size_t n);
// inType / outType: CastType codes (float32, float16, bfloat16).
void castHost(const void* in, int inType, void* out, int outType, size_t n);

}  // namespace ops
}  // namespace collectives
