#include "reduce_ops.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace collectives {
namespace {

// Unsigned twin for wrapping integer arithmetic.
template <typename T, bool = std::is_integral<T>::value>
struct Wrap {
  static T add(T a, T b) { return a + b; }
  static T mul(T a, T b) { return a * b; }
};
template <typename T>
struct Wrap<T, true> {
  using U = typename std::make_unsigned<T>::type;
  static T add(T a, T b) { return T(U(U(a) + U(b))); }
  static T mul(T a, T b) { return T(U(U(a) * U(b))); }
};

// NaN wins in min/max, as torch.minimum/maximum and NCCL do.
template <typename T>
inline bool eitherNaN(T a, T b, T* out) {
  if constexpr (std::is_floating_point<T>::value) {
    if (a != a || b != b) {
      *out = a != a ? a : b;
      return true;
    }
  }
  return false;
}
template <typename T>
inline T minOf(T a, T b) {
  T nan;
  if (eitherNaN(a, b, &nan)) return nan;
  return b < a ? b : a;
}
template <typename T>
inline T maxOf(T a, T b) {
  T nan;
  if (eitherNaN(a, b, &nan)) return nan;
  return a < b ? b : a;
}

template <typename T>
void applyBitwise(RedOp op, T* out, const T* a, const T* b, size_t n) {
  if (op == RedOp::kBand) {
    for (size_t i = 0; i < n; i++) out[i] = T(a[i] & b[i]);
  } else if (op == RedOp::kBor) {
    for (size_t i = 0; i < n; i++) out[i] = T(a[i] | b[i]);
  } else {
    for (size_t i = 0; i < n; i++) out[i] = T(a[i] ^ b[i]);
  }
}

template <typename T>
void apply(RedOp op, T* out, const T* a, const T* b, size_t n) {
  switch (op) {
    case RedOp::kSum:
    case RedOp::kAvg:
      for (size_t i = 0; i < n; i++) out[i] = Wrap<T>::add(a[i], b[i]);
      break;
    case RedOp::kProd:
      for (size_t i = 0; i < n; i++) out[i] = Wrap<T>::mul(a[i], b[i]);
      break;
    case RedOp::kMin:
      for (size_t i = 0; i < n; i++) out[i] = minOf(a[i], b[i]);
      break;
    case RedOp::kMax:
      for (size_t i = 0; i < n; i++) out[i] = maxOf(a[i], b[i]);
      break;
    case RedOp::kBand:
    case RedOp::kBor:
    case RedOp::kBxor:
      // Callers refuse bitwise ops on floating dtypes before they get here.
      if constexpr (std::is_integral<T>::value) applyBitwise(op, out, a, b, n);
      break;
  }
}

template <typename T>
ReduceFn make(RedOp op) {
  return [op](void* out, const void* a, const void* b, size_t n) {
    apply<T>(op, static_cast<T*>(out), static_cast<const T*>(a),
             static_cast<const T*>(b), n);
  };
}

}  // namespace

ReduceFn reduceFunction(DType dtype, RedOp op) {
  switch (dtype) {
    case DType::kFloat32: return make<float>(op);
    case DType::kFloat64: return make<double>(op);
    case DType::kInt8: return make<int8_t>(op);
    case DType::kUint8: return make<uint8_t>(op);
    case DType::kInt32: return make<int32_t>(op);
    case DType::kInt64: return make<int64_t>(op);
    case DType::kFloat16:
    case DType::kBFloat16: break;
  }
  return nullptr;
}

void reduceInto(DType dtype, RedOp op, void* dst, const void* src, size_t count) {
  reduceFunction(dtype, op)(dst, dst, src, count);
}

void divideInPlace(DType dtype, void* data, size_t count, int divisor) {
  if (dtype == DType::kFloat32) {
    float* p = static_cast<float*>(data);
    const float d = float(divisor);
    for (size_t i = 0; i < count; i++) p[i] /= d;
  } else if (dtype == DType::kFloat64) {
    double* p = static_cast<double*>(data);
    const double d = double(divisor);
    for (size_t i = 0; i < count; i++) p[i] /= d;
  }
}

void widenHalf(DType dtype, const uint16_t* in, float* out, size_t count) {
  if (dtype == DType::kFloat16) {
    for (size_t i = 0; i < count; i++) out[i] = halfToFloat(in[i]);
  } else {
    for (size_t i = 0; i < count; i++) out[i] = bf16ToFloat(in[i]);
  }
}

void narrowHalf(DType dtype, const float* in, uint16_t* out, size_t count) {
  if (dtype == DType::kFloat16) {
    for (size_t i = 0; i < count; i++) out[i] = floatToHalf(in[i]);
  } else {
    for (size_t i = 0; i < count; i++) out[i] = floatToBf16(in[i]);
  }
}

}  // namespace collectives
