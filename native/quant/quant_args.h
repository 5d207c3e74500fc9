// The native backstop for the quantized API's arguments (formats, block
// sizes, seeds, error-feedback buffers), in the style of ../args.h: every
// failure is a TypeError or RangeError with code INVALID_ARGUMENT.
#pragma once

#include <napi.h>

#include "../args.h"
#include "../diagnostics.h"
#include "quant_engine.h"
#include "quantized_ops.h"
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

// What a quantized collective of `size` ranks moves, from its input and
// output lengths (RangeError naming the argument when they do not fit):
// `count` elements per rank (all of them for all-reduce), and the length of
// its error-feedback residual.
struct QuantShape {
  size_t count;
  size_t residualLength;
};
QuantShape quantShapeArg(Napi::Env env, QuantKind k, size_t inLength, size_t outLength, int size);

// The reduction of a reducing kind: sum or avg (RangeError otherwise); sum
// for the others, whose `v` is ignored.
RedOp quantRedOpArg(Napi::Env env, const Napi::Value& v, QuantKind k, DType dtype);

}  // namespace quant

// The detail-mode fingerprint of a quantized collective: the format and
// block size must agree across ranks too, and so must host against device.
CallSignature quantizedSignature(quant::QuantKind kind, DType dtype, size_t count, RedOp op,
                                 const quant::QuantSpec& spec, bool device);

}  // namespace collectives
