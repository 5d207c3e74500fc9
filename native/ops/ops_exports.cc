#include "ops_exports.h"

#include <cmath>
#include <string>

#include "../args.h"
#include "elementwise.h"

namespace collectives {
namespace ops {
namespace {

double numberArg(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throwTypeError(env, std::string(name) + ": expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throwRangeError(env, std::string(name) + ": expected a finite number");
  return d;
}

ArrayView floatArray(Napi::Env env, const Napi::Value& v, const char* name, size_t length,
                     bool checkLength) {
  ArrayView a = arrayArg(env, v, name, DType::kFloat32);
  if (checkLength && a.length != length) {
    throwRangeError(env, std::string(name) + ": expected " + std::to_string(length) +
                             " elements, got " + std::to_string(a.length));
  }
  return a;
}

void checkApart(Napi::Env env, const ArrayView* arrays, const char* const* names, size_t k) {
  for (size_t i = 0; i < k; i++) {
    for (size_t j = i + 1; j < k; j++) {
      if (overlaps(arrays[i], arrays[j])) {
        throwRangeError(env, std::string(names[j]) + ": expected memory apart from " + names[i]);
      }
    }
  }
}

// adamwStep(param, grad, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* names[4] = {"param", "grad", "expAvg", "expAvgSq"};
  ArrayView a[4];
  a[0] = floatArray(env, info[0], names[0], 0, false);
  for (int i = 1; i < 4; i++) a[i] = floatArray(env, info[i], names[i], a[0].length, true);
  checkApart(env, a, names, 4);
  const double lr = numberArg(env, info[4], "lr");
  const double beta1 = numberArg(env, info[5], "beta1");
  const double beta2 = numberArg(env, info[6], "beta2");
  const double eps = numberArg(env, info[7], "eps");
  const double wd = numberArg(env, info[8], "weightDecay");
  const double step = double(intArg(env, info[9], "step", 1, (int64_t(1) << 53) - 1));
  if (!(beta1 >= 0 && beta1 < 1)) throwRangeError(env, "beta1: expected a number in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) throwRangeError(env, "beta2: expected a number in [0, 1)");
  adamwHost(adamwScalars(lr, beta1, beta2, eps, wd, step), static_cast<float*>(a[0].data),
            static_cast<const float*>(a[1].data), static_cast<float*>(a[2].data),
            static_cast<float*>(a[3].data), a[0].length);
  return env.Undefined();
}

// nesterovStep(param, delta, momentumBuffer, lr, momentum)
Napi::Value Nesterov(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* names[3] = {"param", "delta", "momentumBuffer"};
  ArrayView a[3];
  a[0] = floatArray(env, info[0], names[0], 0, false);
  for (int i = 1; i < 3; i++) a[i] = floatArray(env, info[i], names[i], a[0].length, true);
  checkApart(env, a, names, 3);
  const float lr = float(numberArg(env, info[3], "lr"));
  const float mu = float(numberArg(env, info[4], "momentum"));
  nesterovHost(lr, mu, static_cast<float*>(a[0].data), static_cast<const float*>(a[1].data),
               static_cast<float*>(a[2].data), a[0].length);
  return env.Undefined();
}

// axpy(a, x, y): y += a * x; x may be y itself, not a part of it.
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const float alpha = float(numberArg(env, info[0], "a"));
  ArrayView x = floatArray(env, info[1], "x", 0, false);
  ArrayView y = floatArray(env, info[2], "y", x.length, true);
  if (overlaps(x, y) && x.data != y.data) {
    throwRangeError(env, "y: expected the same array as x or memory apart from it");
  }
  axpyHost(alpha, static_cast<const float*>(x.data), static_cast<float*>(y.data), x.length);
  return env.Undefined();
}

// scale(x, a): x *= a
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ArrayView x = floatArray(env, info[0], "x", 0, false);
  const float alpha = float(numberArg(env, info[1], "a"));
  scaleHost(alpha, static_cast<float*>(x.data), x.length);
  return env.Undefined();
}

int castTypeArg(Napi::Env env, const Napi::Value& v, const char* name) {
  DType t = dtypeArg(env, v);
  if (t != DType::kFloat32 && !isHalf(t)) {
    throwTypeError(env, std::string(name) + ": expected float32, float16 or bfloat16, got " +
                            dtypeName(t));
  }
  return int(t);
}

// cast(input, inputDtype, output, outputDtype)
Napi::Value Cast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int inType = castTypeArg(env, info[1], "inputDtype");
  const int outType = castTypeArg(env, info[3], "outputDtype");
  ArrayView in = arrayArg(env, info[0], "input", DType(inType));
  ArrayView out = arrayArg(env, info[2], "output", DType(outType));
  if (out.length != in.length) {
    throwRangeError(env, "output: expected " + std::to_string(in.length) + " elements, got " +
                             std::to_string(out.length));
  }
  if (overlaps(in, out)) throwRangeError(env, "output: expected memory apart from the input");
  castHost(in.data, inType, out.data, outType, in.length);
  return env.Undefined();
}

}  // namespace

void registerExports(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("adamwStep", Napi::Function::New(env, AdamW, "adamwStep"));
  o.Set("nesterovStep", Napi::Function::New(env, Nesterov, "nesterovStep"));
  o.Set("axpy", Napi::Function::New(env, Axpy, "axpy"));
  o.Set("scale", Napi::Function::New(env, Scale, "scale"));
  o.Set("cast", Napi::Function::New(env, Cast, "cast"));
  exports.Set("ops", o);
}

}  // namespace ops
}  // namespace collectives
