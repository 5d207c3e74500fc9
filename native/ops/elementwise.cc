#include "elementwise.h"

#include <cstring>

namespace collectives {
namespace ops {

// __restrict__: the arrays do not overlap (checked by the callers), which
// lets the compiler vectorize these loops.

void adamwHost(const AdamWScalars& s, float* __restrict__ param, const float* __restrict__ grad,
               float* __restrict__ expAvg, float* __restrict__ expAvgSq, size_t n) {
  for (size_t i = 0; i < n; i++) adamwElement(s, param[i], grad[i], expAvg[i], expAvgSq[i]);
}

void nesterovHost(float lr, float momentum, float* __restrict__ param,
                  const float* __restrict__ delta, float* __restrict__ buf, size_t n) {
  for (size_t i = 0; i < n; i++) nesterovElement(lr, momentum, param[i], delta[i], buf[i]);
}

void axpyHost(float a, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = axpyElement(a, x[i], y[i]);
}

void scaleHost(float a, float* __restrict__ x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = scaleElement(a, x[i]);
}

namespace {

template <typename In, typename Out, typename F>
void castLoop(const void* in, void* out, size_t n, F f) {
  const In* __restrict__ src = static_cast<const In*>(in);
  Out* __restrict__ dst = static_cast<Out*>(out);
  for (size_t i = 0; i < n; i++) dst[i] = f(src[i]);
}

}  // namespace

void castHost(const void* in, int inType, void* out, int outType, size_t n) {
  constexpr int F32 = int(CastType::kFloat32), F16 = int(CastType::kFloat16),
                BF16 = int(CastType::kBFloat16);
  if (inType == outType && inType == F32) {
    std::memmove(out, in, n * 4);
  } else if (inType == F32 && outType == F16) {
    castLoop<float, uint16_t>(in, out, n, floatToHalfBits);
  } else if (inType == F32 && outType == BF16) {
    castLoop<float, uint16_t>(in, out, n, floatToBf16Bits);
  } else if (inType == F16 && outType == F32) {
    castLoop<uint16_t, float>(in, out, n, halfBitsToFloat);
  } else if (inType == BF16 && outType == F32) {
    castLoop<uint16_t, float>(in, out, n, bf16BitsToFloat);
  } else if (inType == F16 && outType == BF16) {
    castLoop<uint16_t, uint16_t>(in, out, n,
                                 [](uint16_t h) { return floatToBf16Bits(halfBitsToFloat(h)); });
  } else if (inType == BF16 && outType == F16) {
    castLoop<uint16_t, uint16_t>(in, out, n,
                                 [](uint16_t h) { return floatToHalfBits(bf16BitsToFloat(h)); });
  } else {
    // Same half type: through float32, so NaNs come out quiet, as on the device.
    for (size_t i = 0; i < n; i++) storeFromFloat(out, i, outType, loadAsFloat(in, i, inType));
  }
}

}  // namespace ops
}  // namespace collectives
