// Element types and reduction operators shared by every backend, plus the
// float16 / bfloat16 conversions. Half-precision values are reduced in float32
// and rounded once at the end, so a sum does not pick up one rounding per hop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace collectives {

enum class DType : int {
  kFloat32 = 0,
  kFloat64 = 1,
  kFloat16 = 2,
  kBFloat16 = 3,
  kInt8 = 4,
  kUint8 = 5,
  kInt32 = 6,
  kInt64 = 7,
};
constexpr int kDTypeCount = 8;

// kBand, kBor and kBxor (torch's BAND/BOR/BXOR) are defined on integer dtypes only.
enum class RedOp : int {
  kSum = 0, kProd = 1, kMin = 2, kMax = 3, kAvg = 4, kBand = 5, kBor = 6, kBxor = 7
};
constexpr int kRedOpCount = 8;

inline bool isBitwise(RedOp op) {
  return op == RedOp::kBand || op == RedOp::kBor || op == RedOp::kBxor;
}

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kInt8:
    case DType::kUint8:
      return 1;
  }
  return 0;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt8: return "int8";
    case DType::kUint8: return "uint8";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
  }
  return "unknown";
}

inline bool isHalf(DType t) { return t == DType::kFloat16 || t == DType::kBFloat16; }
inline bool isFloating(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || isHalf(t);
}

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float bf16ToFloat(uint16_t h) { return bitsFloat(uint32_t(h) << 16); }

inline uint16_t floatToBf16(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // keep NaN a NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return uint16_t(u >> 16);
}

inline float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bitsFloat(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    if (man == 0) return bitsFloat(sign);
    // Subnormal half: value is man * 2^-24, exact in float32.
    float v = float(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bitsFloat(sign | ((exp + 112) << 23) | (man << 13));
}

inline uint16_t floatToHalf(float f) {
  uint32_t u = floatBits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to infinity
  if (a < 0x38800000u) {
    // Result is subnormal or zero: scale so that the integer part is the
    // half mantissa and let float rounding (nearest-even) do the work.
    float v = bitsFloat(a) * 16777216.0f;  // * 2^24
    uint32_t m = uint32_t(v);
    float rem = v - float(m);
    if (rem > 0.5f || (rem == 0.5f && (m & 1u))) m++;
    return uint16_t(sign | m);
  }
  uint32_t exp = (a >> 23) - 112;
  uint32_t man = a & 0x7fffffu;
  uint32_t h = (exp << 10) | (man >> 13);
  uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return uint16_t(sign | h);
}

inline float halfBitsToFloat(DType t, uint16_t h) {
  return t == DType::kFloat16 ? halfToFloat(h) : bf16ToFloat(h);
}
inline uint16_t floatToHalfBits(DType t, float f) {
  return t == DType::kFloat16 ? floatToHalf(f) : floatToBf16(f);
}

}  // namespace collectives
