#include "args.h"

#include <cmath>

#include "errors.h"

namespace collectives {

void throwTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, codes::kInvalidArgument));
  throw e;
}

void throwRangeError(Napi::Env env, const std::string& message) {
  Napi::RangeError e = Napi::RangeError::New(env, message);
  e.Set("code", Napi::String::New(env, codes::kInvalidArgument));
  throw e;
}

void throwCoded(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

namespace {

bool arrayTypeFits(napi_typedarray_type type, DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return type == napi_float32_array;
    case DType::kFloat64: return type == napi_float64_array;
    case DType::kFloat16:
    case DType::kBFloat16: return type == napi_uint16_array;
    case DType::kInt8: return type == napi_int8_array;
    case DType::kUint8: return type == napi_uint8_array || type == napi_uint8_clamped_array;
    case DType::kInt32: return type == napi_int32_array;
    case DType::kInt64: return type == napi_bigint64_array;
  }
  return false;
}

}  // namespace

DType dtypeArg(Napi::Env env, const Napi::Value& v) {
  if (!v.IsNumber()) throwTypeError(env, "dtype: expected a dtype code");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d < kDTypeCount) || d != std::floor(d)) {
    throwRangeError(env, "dtype: expected a dtype code from 0 to 7");
  }
  return static_cast<DType>(int(d));
}

RedOp redOpArg(Napi::Env env, const Napi::Value& v, DType dtype) {
  if (!v.IsNumber()) throwTypeError(env, "op: expected a reduce-op code");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d < kRedOpCount) || d != std::floor(d)) {
    throwRangeError(env, "op: expected a reduce-op code from 0 to " + std::to_string(kRedOpCount - 1));
  }
  RedOp op = static_cast<RedOp>(int(d));
  if (op == RedOp::kAvg && !isFloating(dtype)) {
    throwTypeError(env, std::string("op: avg needs a floating dtype, got ") + dtypeName(dtype));
  }
  if (isBitwise(op) && isFloating(dtype)) {
    throwTypeError(env, std::string("op: band, bor and bxor need an integer dtype, got ") + dtypeName(dtype));
  }
  return op;
}

ArrayView arrayArg(Napi::Env env, const Napi::Value& v, const char* name, DType dtype) {
  if (!v.IsTypedArray()) {
    throwTypeError(env, std::string(name) + ": expected a typed array for " +
                            dtypeName(dtype));
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (!arrayTypeFits(ta.TypedArrayType(), dtype)) {
    throwTypeError(env, std::string(name) + ": the typed array's element type does not carry " +
                            dtypeName(dtype));
  }
  if (ta.ArrayBuffer().IsDetached()) {
    throwTypeError(env, std::string(name) +
                            ": the typed array's buffer is detached (transferred to another thread?)");
  }
  ArrayView view;
  view.value = v;
  view.length = ta.ElementLength();
  view.bytes = ta.ByteLength();
  if (view.length > 0) {
    void* base = nullptr;
    size_t len = 0;
    napi_typedarray_type t;
    napi_value ab;
    size_t offset = 0;
    if (napi_get_typedarray_info(env, v, &t, &len, &base, &ab, &offset) != napi_ok ||
        base == nullptr) {
      throwTypeError(env, std::string(name) + ": the typed array's buffer is detached");
    }
    view.data = base;
  }
  return view;
}

int64_t intArg(Napi::Env env, const Napi::Value& v, const char* name, int64_t min,
               int64_t max) {
  if (!v.IsNumber()) throwTypeError(env, std::string(name) + ": expected an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(min) && d <= double(max)) || d != std::floor(d)) {
    throwRangeError(env, std::string(name) + ": expected an integer from " +
                             std::to_string(min) + " to " + std::to_string(max));
  }
  return int64_t(d);
}

Millis timeoutArg(Napi::Env env, const Napi::Value& v) {
  // Gloo keeps timeouts in milliseconds in 32-bit-safe arithmetic in places;
  // a month is far beyond any real collective.
  return Millis(intArg(env, v, "timeoutMs", 1, int64_t(30) * 24 * 3600 * 1000));
}

std::vector<int64_t> countsArg(Napi::Env env, const Napi::Value& v, const char* name,
                               int size) {
  if (!v.IsArray()) throwTypeError(env, std::string(name) + ": expected an array of counts");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != uint32_t(size)) {
    throwRangeError(env, std::string(name) + ": expected " + std::to_string(size) +
                             " counts (one per rank), got " + std::to_string(a.Length()));
  }
  std::vector<int64_t> out(size);
  for (uint32_t i = 0; i < a.Length(); i++) {
    out[i] = intArg(env, a.Get(i), name, 0, int64_t(1) << 50);
  }
  return out;
}

std::string stringArg(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsString()) throwTypeError(env, std::string(name) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

bool overlaps(const ArrayView& a, const ArrayView& b) {
  if (a.bytes == 0 || b.bytes == 0) return false;
  auto pa = reinterpret_cast<uintptr_t>(a.data);
  auto pb = reinterpret_cast<uintptr_t>(b.data);
  return pa < pb + b.bytes && pb < pa + a.bytes;
}

}  // namespace collectives
