// Element-wise reductions used by the Gloo backend (as Gloo reduce functions)
// and by the local step of reduce-scatter. Integer arithmetic wraps the way
// two's complement hardware does (as in torch and NCCL), without relying on
// signed overflow, which C++ leaves undefined.
#pragma once

#include <cstddef>
#include <functional>

#include "dtype.h"

namespace collectives {

// out[i] = a[i] op b[i]; out may alias a or b.
using ReduceFn = std::function<void(void*, const void*, const void*, size_t)>;

// The reduction for `dtype` with `op`. AVG reduces as SUM: the caller divides.
// Half types are not handled here: they are widened to float32 first.
ReduceFn reduceFunction(DType dtype, RedOp op);

// dst[i] = dst[i] op src[i] for `count` elements of `dtype` (no half types).
void reduceInto(DType dtype, RedOp op, void* dst, const void* src, size_t count);

// Divides every element by `divisor` (floating dtypes only; AVG's last step).
void divideInPlace(DType dtype, void* data, size_t count, int divisor);

// Half <-> float32 conversion of whole arrays.
void widenHalf(DType dtype, const uint16_t* in, float* out, size_t count);
void narrowHalf(DType dtype, const float* in, uint16_t* out, size_t count);

}  // namespace collectives
