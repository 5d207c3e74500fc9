// The native backstop for arguments. The TypeScript layer validates first and
// writes friendlier messages; these checks keep a bad call from reaching Gloo
// even when the addon is called directly. Every failure throws a TypeError or
// RangeError with code INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <napi.h>

#include "backend.h"
#include "dtype.h"

namespace collectives {

struct ArrayView {
  Napi::Value value;
  void* data = nullptr;
  size_t length = 0;  // elements
  size_t bytes = 0;
};

[[noreturn]] void throwTypeError(Napi::Env env, const std::string& message);
[[noreturn]] void throwRangeError(Napi::Env env, const std::string& message);
// An Error with one of errors.h's codes (DESTROYED, BACKEND_UNAVAILABLE, INTERNAL, ...).
[[noreturn]] void throwCoded(Napi::Env env, const char* code, const std::string& message);

DType dtypeArg(Napi::Env env, const Napi::Value& v);
RedOp redOpArg(Napi::Env env, const Napi::Value& v, DType dtype);
// A typed array whose element type carries `dtype`.
ArrayView arrayArg(Napi::Env env, const Napi::Value& v, const char* name, DType dtype);
int64_t intArg(Napi::Env env, const Napi::Value& v, const char* name, int64_t min,
               int64_t max);
Millis timeoutArg(Napi::Env env, const Napi::Value& v);
std::vector<int64_t> countsArg(Napi::Env env, const Napi::Value& v, const char* name,
                               int size);
std::string stringArg(Napi::Env env, const Napi::Value& v, const char* name);

bool overlaps(const ArrayView& a, const ArrayView& b);

}  // namespace collectives
