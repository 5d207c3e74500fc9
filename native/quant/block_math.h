// The per-block quantization math, written once. The host loops in codec.cc
// call these functions element by element (they inline and vectorize), and
// the CUDA kernels of the GPU backend include this header as it is: every
// function is QUANT_HD, which is `__host__ __device__` under nvcc.
//
// A block of up to B elements shares one float32 scale:
//   scale = absmax / formatMax(f), rounded up by one ulp when needed so that
//           scale * formatMax(f) >= absmax (no element ever saturates);
//   q     = round-to-nearest-even(x / scale) in the format's grid;
//   x^    = decode(q) * scale.
// A block holding NaN gets a NaN scale; one holding +-Inf (and no NaN) gets
// +Inf. Its payload is then zero except for the infinite elements, which hold
// the format's largest code of their sign, so an infinite element dequantizes
// to the same infinity and every other element of the block to NaN: a
// non-finite value never comes back finite. The layout of blocks in memory is
// in FORMAT.md.
#pragma once

#include <cstdint>
#include <cstring>

#include "../hd.h"

#define QUANT_HD COLLECTIVES_HD

namespace collectives {
namespace quant {

enum class Format : int { kInt8 = 0, kInt4 = 1, kFp8E4M3 = 2, kFp8E5M2 = 3 };
constexpr int kFormatCount = 4;

QUANT_HD inline uint32_t toBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

QUANT_HD inline float fromBits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// The largest magnitude of the format's grid.
QUANT_HD inline float formatMax(Format f) {
  switch (f) {
    case Format::kInt8: return 127.0f;
    case Format::kInt4: return 7.0f;
    case Format::kFp8E4M3: return 448.0f;
    case Format::kFp8E5M2: return 57344.0f;
  }
  return 0.0f;
}

// Payload bits per element.
QUANT_HD inline unsigned formatBits(Format f) { return f == Format::kInt4 ? 4u : 8u; }

// |x| as ordered integer bits: +0 < finite < +Inf (0x7f800000) < NaN.
// The largest of them over a block is its absmax, and NaN wins.
QUANT_HD inline uint32_t absBits(float x) { return toBits(x) & 0x7fffffffu; }

constexpr uint32_t kInfBits = 0x7f800000u;
constexpr uint32_t kQuietNaNBits = 0x7fc00000u;

// The block's scale from the largest absBits of its elements.
QUANT_HD inline float blockScale(uint32_t absmaxBits, Format f) {
  if (absmaxBits > kInfBits) return fromBits(kQuietNaNBits);
  if (absmaxBits == kInfBits) return fromBits(kInfBits);
  if (absmaxBits == 0) return 0.0f;
  const float absmax = fromBits(absmaxBits);
  const float m = formatMax(f);
  float s = absmax / m;
  // Rounded down (or underflowed): step up one ulp, so |x / s| <= m for every
  // element. Exact in double: s and m have at most 24 + 16 significant bits.
  if (double(s) * double(m) < double(absmax)) s = fromBits(toBits(s) + 1u);
  // Near FLT_MAX, m * s must not overflow on the way back: step down instead,
  // and the largest element saturates, by less than one ulp.
  while (double(s) * double(m) > 3.4028234663852886e38) s = fromBits(toBits(s) - 1u);
  return s;
}

QUANT_HD inline bool finiteScale(float scale) { return absBits(scale) < kInfBits; }

// Round to nearest, ties to even, for |y| < 2^22 (the scaled values here are
// at most 57344): adding 1.5 * 2^23 leaves the integer in the low mantissa.
QUANT_HD inline int32_t roundEven(float y) {
#if defined(__CUDA_ARCH__)
  return __float2int_rn(y);
#else
  return int32_t(toBits(y + 12582912.0f)) - 0x4B400000;
#endif
}

// floor(y) for |y| < 2^22.
QUANT_HD inline int32_t floorInt(float y) {
  int32_t t = int32_t(y);
  return float(t) > y ? t - 1 : t;
}

// Counter-based random bits (splitmix64 of key + index): the same key and
// element index give the same bits on any thread, block split or device.
QUANT_HD inline uint32_t randomBits(uint64_t key, uint64_t index) {
  uint64_t z = key + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return uint32_t((z ^ (z >> 31)) >> 32);
}

// A uniform value in [0, 1) with 24 random bits.
QUANT_HD inline float uniform01(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

// ---- integer formats (int8: [-127, 127], int4: [-7, 7]) --------------------

QUANT_HD inline int32_t clampInt(int32_t q, int32_t m) { return q < -m ? -m : (q > m ? m : q); }

// y = x / scale, |y| <= m.
QUANT_HD inline int32_t encodeInt(float y, int32_t m) { return clampInt(roundEven(y), m); }
// Stochastic: floor(y + u), u uniform in [0, 1): unbiased, E[q] = y.
QUANT_HD inline int32_t encodeIntStochastic(float y, int32_t m, uint32_t bits) {
  return clampInt(floorInt(y + uniform01(bits)), m);
}

// A signed 4-bit value (two's complement nibble) back to an integer.
QUANT_HD inline int32_t nibbleValue(uint32_t nibble) {
  return int32_t((nibble & 0xFu) ^ 0x8u) - 8;
}

// ---- fp8 (OCP 8-bit floating point) ----------------------------------------
// e4m3 ("FN"): bias 7, no infinities, max 448, NaN 0x7f / 0xff, subnormals
// are multiples of 2^-9. e5m2: IEEE-like, bias 15, max 57344, Inf 0x7c,
// NaN 0x7d-0x7f, subnormals are multiples of 2^-16. Encoding saturates at the
// largest finite value.

// Codes of the largest finite magnitudes.
constexpr uint32_t kE4M3MaxCode = 0x7e;
constexpr uint32_t kE5M2MaxCode = 0x7b;

// Round-to-nearest-even encoding of y (|y| <= max; larger saturates).
// `random` (24 low bits used) switches to stochastic rounding: the bits below
// the kept mantissa are added before truncation. Both the normal and the
// subnormal encodings are computed and one is selected, so that loops over
// these functions have no branches and vectorize.
QUANT_HD inline uint32_t encodeE4M3(float y, bool stochastic, uint32_t random) {
  const uint32_t u = toBits(y);
  const uint32_t sign = (u >> 24) & 0x80u;
  uint32_t a = u & 0x7fffffffu;
  a = a < 0x43E00000u ? a : 0x43E00000u;  // saturate at 448
  // Normal: round the float32 mantissa to 3 bits, rebias the exponent (127 -> 7).
  const uint32_t r = stochastic ? a + (random & 0xFFFFFu) : a + 0x7FFFFu + ((a >> 20) & 1u);
  uint32_t normal = (r >> 20) - (120u << 3);
  normal = normal < kE4M3MaxCode ? normal : kE4M3MaxCode;
  // Subnormal (below 2^-6): multiples of 2^-9; code 8 is the smallest normal.
  const float z = fromBits(a < 0x3C800000u ? a : 0x3C800000u) * 512.0f;
  const uint32_t sub = uint32_t(stochastic ? floorInt(z + uniform01(random)) : roundEven(z));
  const uint32_t isSub = 0u - uint32_t(a < 0x3C800000u);  // all ones when subnormal
  return sign | (sub & isSub) | (normal & ~isSub);
}

QUANT_HD inline uint32_t encodeE5M2(float y, bool stochastic, uint32_t random) {
  const uint32_t u = toBits(y);
  const uint32_t sign = (u >> 24) & 0x80u;
  uint32_t a = u & 0x7fffffffu;
  a = a < 0x47600000u ? a : 0x47600000u;  // saturate at 57344
  // Normal: round the mantissa to 2 bits, rebias the exponent (127 -> 15).
  const uint32_t r = stochastic ? a + (random & 0x1FFFFFu) : a + 0xFFFFFu + ((a >> 21) & 1u);
  uint32_t normal = (r >> 21) - (112u << 2);
  normal = normal < kE5M2MaxCode ? normal : kE5M2MaxCode;
  // Subnormal (below 2^-14): multiples of 2^-16; code 4 is the smallest normal.
  const float z = fromBits(a < 0x38800000u ? a : 0x38800000u) * 65536.0f;
  const uint32_t sub = uint32_t(stochastic ? floorInt(z + uniform01(random)) : roundEven(z));
  const uint32_t isSub = 0u - uint32_t(a < 0x38800000u);
  return sign | (sub & isSub) | (normal & ~isSub);
}

QUANT_HD inline float decodeE4M3(uint32_t c) {
  const uint32_t e = (c >> 3) & 0xFu, m = c & 7u;
  float v;
  if (e == 15 && m == 7) {
    v = fromBits(kQuietNaNBits);
  } else if (e == 0) {
    v = float(m) * (1.0f / 512.0f);
  } else {
    v = fromBits(((e + 120u) << 23) | (m << 20));
  }
  return (c & 0x80u) ? -v : v;
}

QUANT_HD inline float decodeE5M2(uint32_t c) {
  const uint32_t e = (c >> 2) & 0x1Fu, m = c & 3u;
  float v;
  if (e == 31) {
    v = fromBits(m == 0 ? kInfBits : kQuietNaNBits);
  } else if (e == 0) {
    v = float(m) * (1.0f / 65536.0f);
  } else {
    v = fromBits(((e + 112u) << 23) | (m << 21));
  }
  return (c & 0x80u) ? -v : v;
}

// ---- one element, any format -------------------------------------------------

// The payload code of x in a block with a finite, non-zero `scale`.
QUANT_HD inline uint32_t encodeElement(Format f, float x, float scale, bool stochastic,
                                       uint32_t random) {
  const float y = x / scale;
  switch (f) {
    case Format::kInt8:
      return uint32_t(stochastic ? encodeIntStochastic(y, 127, random) : encodeInt(y, 127)) & 0xFFu;
    case Format::kInt4:
      return uint32_t(stochastic ? encodeIntStochastic(y, 7, random) : encodeInt(y, 7)) & 0xFu;
    case Format::kFp8E4M3: return encodeE4M3(y, stochastic, random);
    case Format::kFp8E5M2: return encodeE5M2(y, stochastic, random);
  }
  return 0;
}

// The payload code of x in a block whose scale is not finite: the largest
// code of x's sign for an infinite x, zero otherwise (see the top of file).
QUANT_HD inline uint32_t encodeNonFinite(Format f, float x) {
  if (absBits(x) != kInfBits) return 0;
  const bool neg = (toBits(x) >> 31) != 0;
  switch (f) {
    case Format::kInt8: return neg ? 0x81u : 0x7Fu;   // -127 / 127
    case Format::kInt4: return neg ? 0x9u : 0x7u;     // -7 / 7
    case Format::kFp8E4M3: return (neg ? 0x80u : 0u) | kE4M3MaxCode;
    case Format::kFp8E5M2: return (neg ? 0x80u : 0u) | kE5M2MaxCode;
  }
  return 0;
}

// The grid value of a payload code (before the scale).
QUANT_HD inline float decodeCode(Format f, uint32_t code) {
  switch (f) {
    case Format::kInt8: return float(int32_t(int8_t(uint8_t(code))));
    case Format::kInt4: return float(nibbleValue(code));
    case Format::kFp8E4M3: return decodeE4M3(code);
    case Format::kFp8E5M2: return decodeE5M2(code);
  }
  return 0.0f;
}

QUANT_HD inline float dequantizeElement(Format f, uint32_t code, float scale) {
  return decodeCode(f, code) * scale;
}

}  // namespace quant
}  // namespace collectives
