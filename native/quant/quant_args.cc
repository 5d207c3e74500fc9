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

namespace {

void checkLength(Napi::Env env, const char* name, size_t got, size_t expected, const char* what) {
  if (got != expected) {
    throwRangeError(env, std::string(name) + ": expected " + std::to_string(expected) +
                             " elements (" + what + "), got " + std::to_string(got));
  }
}

}  // namespace

QuantShape quantShapeArg(Napi::Env env, QuantKind k, size_t inLength, size_t outLength, int size) {
  const size_t n = size_t(size);
  switch (k) {
    case QuantKind::kAllToAll:
      checkLength(env, "output", outLength, inLength, "the input's length");
      if (inLength % n != 0) {
        throwRangeError(env, "input: expected a length divisible by the world size (" +
                                 std::to_string(size) + "), got " + std::to_string(inLength));
      }
      return {inLength / n, inLength};
    case QuantKind::kReduceScatter:
      checkLength(env, "input", inLength, outLength * n, "output length x world size");
      return {outLength, inLength};
    case QuantKind::kAllGather:
      checkLength(env, "output", outLength, inLength * n, "input length x world size");
      return {inLength, inLength};
    case QuantKind::kAllReduce:
      checkLength(env, "output", outLength, inLength, "the input's length");
      return {inLength, inLength + shardCount(inLength, size)};
  }
  return {0, 0};
}

RedOp quantRedOpArg(Napi::Env env, const Napi::Value& v, QuantKind k, DType dtype) {
  if (!reduces(k)) return RedOp::kSum;
  const RedOp op = redOpArg(env, v, dtype);
  if (op != RedOp::kSum && op != RedOp::kAvg) {
    throwRangeError(env, "op: expected sum or avg for a quantized reduction");
  }
  return op;
}

}  // namespace quant

CallSignature quantizedSignature(quant::QuantKind kind, DType dtype, size_t count, RedOp op,
                                 const quant::QuantSpec& spec, bool device) {
  static const CallKind kinds[] = {CallKind::kAllToAllQuantized, CallKind::kReduceScatterQuantized,
                                   CallKind::kAllGatherQuantized, CallKind::kAllReduceQuantized};
  CallSignature sig{kinds[int(kind)], dtype, true, count, -1,
                    quant::reduces(kind) ? int32_t(op) : -1};
  sig.device = device;
  sig.format = int32_t(spec.format);
  sig.blockSize = uint32_t(spec.blockSize);
  return sig;
}

}  // namespace collectives
