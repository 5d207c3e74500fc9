#include "quant_args.h"

#include <cmath>
#include <string>

#include "codec.h"

namespace collectives {
namespace quant {

Format formatArg(Napi::Env env, const Napi::Value& v) {
  return Format(intArg(env, v, "format", 0, kFormatCount - 1));
}

size_t blockSizeArg(Napi::Env env, const Napi::Value& v) {
  size_t b = size_t(intArg(env, v, "blockSize", int64_t(kMinBlockSize), int64_t(kMaxBlockSize)));
  if (!validBlockSize(b)) {
    throwRangeError(env, "blockSize: expected a multiple of 8, got " + std::to_string(b));
  }
  return b;
}

DType quantDTypeArg(Napi::Env env, const Napi::Value& v) {
  DType d = dtypeArg(env, v);
  if (!quantizable(d)) {
    throwTypeError(env, std::string("dtype: expected float32, float16 or bfloat16, got ") +
                            dtypeName(d));
  }
  return d;
}

bool seedArg(Napi::Env env, const Napi::Value& v, uint64_t* seed) {
  if (v.IsUndefined() || v.IsNull()) return false;
  if (v.IsBigInt()) {
    bool lossless = false;
    *seed = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throwRangeError(env, "seed: expected a BigInt from 0 to 2^64 - 1");
    return true;
  }
  *seed = uint64_t(intArg(env, v, "seed", 0, (int64_t(1) << 53) - 1));
  return true;
}

float* residualArg(Napi::Env env, const Napi::Value& v, size_t length, const ArrayView& a,
                   const ArrayView& b) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  ArrayView r = arrayArg(env, v, "errorFeedback", DType::kFloat32);
  if (r.length != length) {
    throwRangeError(env, "errorFeedback: expected a Float32Array of " + std::to_string(length) +
                             " elements, got " + std::to_string(r.length));
  }
  if (overlaps(r, a) || overlaps(r, b)) {
    throwRangeError(env, "errorFeedback: expected memory of its own, got one that overlaps "
                         "the input or the output");
  }
  return static_cast<float*>(r.data);
}

}  // namespace quant
}  // namespace collectives
