// The native backstop for the quantized API's arguments (formats, block
// sizes, seeds, error-feedback buffers), in the style of ../args.h: every
// failure is a TypeError or RangeError with code INVALID_ARGUMENT.
#pragma once

#include <napi.h>

#include "../args.h"
#include "../diagnostics.h"
#include "quant_engine.h"
#include "block_math.h"

namespace collectives {
namespace quant {

Format formatArg(Napi::Env env, const Napi::Value& v);
size_t blockSizeArg(Napi::Env env, const Napi::Value& v);
// A dtype code that the codecs take (float32, float16, bfloat16).
DType quantDTypeArg(Napi::Env env, const Napi::Value& v);
// undefined / null: round to nearest. A BigInt or a safe non-negative integer:
// stochastic rounding with that seed.
bool seedArg(Napi::Env env, const Napi::Value& v, uint64_t* seed);
// undefined / null, or a Float32Array of exactly `length` elements that does
// not overlap `a` or `b`.
float* residualArg(Napi::Env env, const Napi::Value& v, size_t length, const ArrayView& a,
                   const ArrayView& b);

}  // namespace quant

// The detail-mode fingerprint of a quantized collective: kind 0..3 is
// allToAll, reduceScatter, allGather, allReduce; the format and block size
// must agree across ranks too, and so must host against device.
CallSignature quantizedSignature(int kind, DType dtype, size_t count, int32_t redOp,
                                 const quant::QuantSpec& spec, bool device);

}  // namespace collectives
