#include "quant_exports.h"

#include <string>

#include "codec.h"
#include "quant_args.h"

namespace collectives {
namespace quant {
namespace {

size_t countArg(Napi::Env env, const Napi::Value& v) {
  return size_t(intArg(env, v, "count", 0, (int64_t(1) << 53) - 1));
}

void checkBytes(Napi::Env env, const ArrayView& bytes, const char* name, size_t expected) {
  if (bytes.bytes != expected) {
    throwRangeError(env, std::string(name) + ": expected " + std::to_string(expected) +
                             " bytes (the quantized size), got " + std::to_string(bytes.bytes));
  }
}

// quantize(input, dtype, format, blockSize, out, residual | null, seed | null)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DType dtype = quantDTypeArg(env, info[1]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  Format format = formatArg(env, info[2]);
  size_t blockSize = blockSizeArg(env, info[3]);
  ArrayView out = arrayArg(env, info[4], "output", DType::kUint8);
  checkBytes(env, out, "output", chunkBytes(in.length, format, blockSize));
  if (overlaps(in, out)) throwRangeError(env, "output: expected memory apart from the input");
  float* residual = residualArg(env, info[5], in.length, in, out);
  Rounding rounding;
  uint64_t seed = 0;
  if (seedArg(env, info[6], &seed)) {
    rounding.stochastic = true;
    rounding.key = streamKey(seed, 0, 0);
  }
  quantizeChunk(in.data, dtype, in.length, format, blockSize, rounding, 0, residual,
                static_cast<uint8_t*>(out.data));
  return env.Undefined();
}

// dequantize(bytes, count, format, blockSize, output, dtype)
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArrayView bytes = arrayArg(env, info[0], "bytes", DType::kUint8);
  size_t count = countArg(env, info[1]);
  Format format = formatArg(env, info[2]);
  size_t blockSize = blockSizeArg(env, info[3]);
  DType dtype = quantDTypeArg(env, info[5]);
  ArrayView out = arrayArg(env, info[4], "output", dtype);
  checkBytes(env, bytes, "bytes", chunkBytes(count, format, blockSize));
  if (out.length != count) {
    throwRangeError(env, "output: expected " + std::to_string(count) + " elements, got " +
                             std::to_string(out.length));
  }
  if (overlaps(bytes, out)) throwRangeError(env, "output: expected memory apart from the bytes");
  dequantizeChunk(static_cast<const uint8_t*>(bytes.data), count, format, blockSize, dtype,
                  out.data);
  return env.Undefined();
}

// quantizedSize(count, format, blockSize) -> bytes of one chunk
Napi::Value QuantizedSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t count = countArg(env, info[0]);
  Format format = formatArg(env, info[1]);
  size_t blockSize = blockSizeArg(env, info[2]);
  return Napi::Number::New(env, double(chunkBytes(count, format, blockSize)));
}

}  // namespace

void registerExports(Napi::Env env, Napi::Object exports) {
  Napi::Object q = Napi::Object::New(env);
  q.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  q.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  q.Set("quantizedSize", Napi::Function::New(env, QuantizedSize, "quantizedSize"));
  q.Set("defaultBlockSize", Napi::Number::New(env, double(kDefaultBlockSize)));
  q.Set("instructionSet", Napi::String::New(env, codecInstructionSet()));
  exports.Set("quant", q);
}

}  // namespace quant
}  // namespace collectives
