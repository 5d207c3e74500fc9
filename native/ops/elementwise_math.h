// The elementwise math of the training layer, written once: the host loops of
// elementwise.cc and the CUDA kernels of gpu/kernels/elementwise_kernels.cu
// call these per-element functions (COLLECTIVES_HD: `__host__ __device__`
// under nvcc). Everything is float32 arithmetic in a fixed order with no
// fused multiply-add (the host is built with -ffp-contract=off, nvcc with
// -fmad=false), so host and device give the same bits.
#pragma once

#include <cmath>
#include <cstdint>

#include "../hd.h"
#include "../quant/block_math.h"  // toBits / fromBits

namespace collectives {
namespace ops {

using quant::fromBits;
using quant::toBits;

// ---- AdamW -----------------------------------------------------------------
// PyTorch's torch.optim.AdamW (decoupled weight decay), one step t >= 1:
//   p  = p * (1 - lr * wd)
//   m  = b1 * m + (1 - b1) * g
//   v  = b2 * v + (1 - b2) * (g * g)
//   p  = p - (lr / (1 - b1^t)) * (m / (sqrt(v) / sqrt(1 - b2^t) + eps))
// The per-step scalars are computed once in double and rounded to float32
// (as PyTorch computes them in Python floats); the rest is float32.

struct AdamWScalars {
  float decay;       // 1 - lr * wd
  float beta1;
  float oneMinusBeta1;
  float beta2;
  float oneMinusBeta2;
  float stepSize;    // lr / (1 - b1^t)
  float bc2Sqrt;     // sqrt(1 - b2^t)
  float eps;
};

inline AdamWScalars adamwScalars(double lr, double beta1, double beta2, double eps,
                                 double weightDecay, double step) {
  AdamWScalars s;
  s.decay = float(1.0 - lr * weightDecay);
  s.beta1 = float(beta1);
  s.oneMinusBeta1 = float(1.0 - beta1);
  s.beta2 = float(beta2);
  s.oneMinusBeta2 = float(1.0 - beta2);
  s.stepSize = float(lr / (1.0 - std::pow(beta1, step)));
  s.bc2Sqrt = float(std::sqrt(1.0 - std::pow(beta2, step)));
  s.eps = float(eps);
  return s;
}

COLLECTIVES_HD inline void adamwElement(const AdamWScalars& s, float& p, float g, float& m,
                                        float& v) {
  const float pd = p * s.decay;
  const float mn = s.beta1 * m + s.oneMinusBeta1 * g;
  const float vn = s.beta2 * v + s.oneMinusBeta2 * (g * g);
  const float denom = sqrtf(vn) / s.bc2Sqrt + s.eps;
  p = pd - s.stepSize * (mn / denom);
  m = mn;
  v = vn;
}

// ---- Nesterov outer step (DiLoCo) -------------------------------------------
// torch.optim.SGD(momentum=mu, nesterov=True, dampening=0, weight_decay=0)
// applied to the pseudo-gradient delta = (parameters before the inner steps)
// - (averaged parameters after them):
//   buf = mu * buf + delta          (PyTorch's first step sets buf = delta:
//                                    the same with buf starting at zero)
//   p   = p - lr * (delta + mu * buf)

COLLECTIVES_HD inline void nesterovElement(float lr, float mu, float& p, float delta,
                                           float& buf) {
  const float b = mu * buf + delta;
  p = p - lr * (delta + mu * b);
  buf = b;
}

// ---- axpy, scale ---------------------------------------------------------------

COLLECTIVES_HD inline float axpyElement(float a, float x, float y) { return y + a * x; }
COLLECTIVES_HD inline float scaleElement(float a, float x) { return x * a; }
// avg's last step: a division, not a multiplication by 1/d (which rounds
// differently unless d is a power of two).
COLLECTIVES_HD inline float divideElement(float d, float x) { return x / d; }

// ---- float32 <-> float16 / bfloat16 (round to nearest, ties to even) ----------
// The same results as dtype.h's host conversions, written for both sides.

COLLECTIVES_HD inline float bf16BitsToFloat(uint16_t h) { return fromBits(uint32_t(h) << 16); }

COLLECTIVES_HD inline uint16_t floatToBf16Bits(float f) {
  uint32_t u = toBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

COLLECTIVES_HD inline float halfBitsToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return fromBits(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    if (man == 0) return fromBits(sign);
    const float v = float(man) * 5.9604644775390625e-08f;  // man * 2^-24, exact
    return sign ? -v : v;
  }
  return fromBits(sign | ((exp + 112u) << 23) | (man << 13));
}

COLLECTIVES_HD inline uint16_t floatToHalfBits(float f) {
  const uint32_t u = toBits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to infinity
  if (a < 0x38800000u) {
    // Subnormal or zero: the integer part of a * 2^24 is the mantissa.
    const float v = fromBits(a) * 16777216.0f;
    uint32_t m = uint32_t(v);
    const float rem = v - float(m);
    if (rem > 0.5f || (rem == 0.5f && (m & 1u))) m++;
    return uint16_t(sign | m);
  }
  const uint32_t exp = (a >> 23) - 112u;
  const uint32_t man = a & 0x7fffffu;
  uint32_t h = (exp << 10) | (man >> 13);
  const uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return uint16_t(sign | h);
}

// Element types of cast(), with native/dtype.h's codes.
enum class CastType : int { kFloat32 = 0, kFloat16 = 2, kBFloat16 = 3 };

COLLECTIVES_HD inline float loadAsFloat(const void* p, size_t i, int type) {
  if (type == int(CastType::kFloat32)) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  return type == int(CastType::kFloat16) ? halfBitsToFloat(h) : bf16BitsToFloat(h);
}

COLLECTIVES_HD inline void storeFromFloat(void* p, size_t i, int type, float x) {
  if (type == int(CastType::kFloat32)) {
    static_cast<float*>(p)[i] = x;
  } else {
    static_cast<uint16_t*>(p)[i] =
        type == int(CastType::kFloat16) ? floatToHalfBits(x) : floatToBf16Bits(x);
  }
}

}  // namespace ops
}  // namespace collectives
