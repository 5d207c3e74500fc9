#include "gpu/device_ops.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "args.h"
#include "errors.h"
#include "gpu/cuda_api.h"
#include "gpu/device_buffer.h"
#include "gpu/kernels_api.h"
#include "quant/codec.h"
#include "quant/quant_args.h"

namespace collectives {
namespace gpu {
namespace {

// One DeviceBuffer argument, usable, with its place in its allocation.
struct DeviceArg {
  const char* name;
  DeviceBuffer* buffer;
  void* ptr;
  size_t begin;  // bytes from the allocation's start
  size_t end;
};

DeviceArg deviceArg(Napi::Env env, const Napi::Value& v, const char* name) {
  DeviceBuffer* b = DeviceBuffer::from(env, v, name);
  if (b->freed()) {
    throwCoded(env, codes::kDestroyed, std::string(name) + ": the DeviceBuffer was freed");
  }
  const size_t bytes = b->length() * dtypeSize(b->dtype());
  return {name, b, b->data(env), b->byteOffset(), b->byteOffset() + bytes};
}

bool floatType(DType t) { return t == DType::kFloat32 || isHalf(t); }

DeviceArg floatArg(Napi::Env env, const Napi::Value& v, const char* name) {
  DeviceArg a = deviceArg(env, v, name);
  if (!floatType(a.buffer->dtype())) {
    throwTypeError(env, std::string(name) +
                            ": expected a DeviceBuffer of float32, float16 or bfloat16, got one of " +
                            dtypeName(a.buffer->dtype()));
  }
  return a;
}

constexpr size_t kAnyLength = SIZE_MAX;

// A DeviceBuffer of `dtype` with `length` elements (kAnyLength: any).
DeviceArg typedArg(Napi::Env env, const Napi::Value& v, const char* name, DType dtype,
                   size_t length = kAnyLength) {
  DeviceArg a = deviceArg(env, v, name);
  if (a.buffer->dtype() != dtype) {
    throwTypeError(env, std::string(name) + ": expected a DeviceBuffer of " + dtypeName(dtype) +
                            ", got one of " + dtypeName(a.buffer->dtype()));
  }
  if (length != kAnyLength && a.buffer->length() != length) {
    throwRangeError(env, std::string(name) + ": expected " + std::to_string(length) +
                             " elements, got " + std::to_string(a.buffer->length()));
  }
  return a;
}

// Every buffer on the first one's device, and none overlapping another.
void checkTogether(Napi::Env env, std::initializer_list<const DeviceArg*> args) {
  const DeviceArg* first = *args.begin();
  for (const DeviceArg* a : args) {
    if (a->buffer->device() != first->buffer->device()) {
      throwRangeError(env, std::string(a->name) + ": expected a DeviceBuffer on device " +
                               std::to_string(first->buffer->device()) + " (as " + first->name +
                               "), got one on device " + std::to_string(a->buffer->device()));
    }
  }
  for (auto i = args.begin(); i != args.end(); ++i) {
    for (auto j = i + 1; j != args.end(); ++j) {
      if ((*i)->buffer->overlaps(*(*j)->buffer)) {
        throwRangeError(env, std::string((*j)->name) + ": expected memory apart from " + (*i)->name);
      }
    }
  }
}

// The scales of a chunk are read and written as float32 in place.
void checkAligned(Napi::Env env, const DeviceArg& a) {
  if (reinterpret_cast<uintptr_t>(a.ptr) % 4 != 0) {
    throwRangeError(env, std::string(a.name) +
                             ": expected a DeviceBuffer starting at a multiple of 4 bytes (the "
                             "chunk's scales are float32), got byteOffset " +
                             std::to_string(a.begin));
  }
}

double numberArg(Napi::Env env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throwTypeError(env, std::string(name) + ": expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throwRangeError(env, std::string(name) + ": expected a finite number");
  return d;
}

// The kernels and the CUDA runtime, with the buffers' device made current.
struct Launch {
  const KernelsApi& kernels;
  const CudaApi& cuda;
};

Launch prepare(Napi::Env env, int device) {
  const CudaStatus& c = cuda();
  if (!c.available) throwCoded(env, codes::kBackendUnavailable, "CUDA is not available: " + c.reason);
  const KernelsStatus& k = kernels();
  if (!k.available) {
    throwCoded(env, codes::kBackendUnavailable, "the CUDA kernels are not available: " + k.reason);
  }
  const cudaError_t err = c.api->cudaSetDevice(device);
  if (err != cudaSuccess) throwCoded(env, codes::kInternal, c.api->describe("cudaSetDevice", err));
  return {*k.api, *c.api};
}

// The launch's status, then the wait for the kernel. Kernels run on the legacy
// default stream (stream NULL), the one DeviceBuffer's copies and fills use,
// so they start after those and the wait covers them.
void finish(Napi::Env env, const Launch& l, const char* what, int rc) {
  if (rc == kKernelsEinval) throwCoded(env, codes::kInvalidArgument, l.kernels.describe(what, rc));
  if (rc != 0) throwCoded(env, codes::kInternal, l.kernels.describe(what, rc));
  const cudaError_t err = l.cuda.cudaStreamSynchronize(nullptr);
  if (err != cudaSuccess) {
    const std::string call = std::string("cudaStreamSynchronize after ") + what;
    throwCoded(env, codes::kInternal, l.cuda.describe(call.c_str(), err));
  }
}

// adamwStep(param, grad, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceArg p = typedArg(env, info[0], "param", DType::kFloat32);
  const size_t n = p.buffer->length();
  DeviceArg g = typedArg(env, info[1], "grad", DType::kFloat32, n);
  DeviceArg m = typedArg(env, info[2], "expAvg", DType::kFloat32, n);
  DeviceArg v = typedArg(env, info[3], "expAvgSq", DType::kFloat32, n);
  checkTogether(env, {&p, &g, &m, &v});
  const double lr = numberArg(env, info[4], "lr");
  const double beta1 = numberArg(env, info[5], "beta1");
  const double beta2 = numberArg(env, info[6], "beta2");
  const double eps = numberArg(env, info[7], "eps");
  const double wd = numberArg(env, info[8], "weightDecay");
  const int64_t step = intArg(env, info[9], "step", 1, (int64_t(1) << 53) - 1);
  if (!(beta1 >= 0 && beta1 < 1)) throwRangeError(env, "beta1: expected a number in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) throwRangeError(env, "beta2: expected a number in [0, 1)");
  Launch l = prepare(env, p.buffer->device());
  finish(env, l, "collectives_cuda_adamw",
         l.kernels.collectives_cuda_adamw(static_cast<float*>(p.ptr), static_cast<const float*>(g.ptr),
                                          static_cast<float*>(m.ptr), static_cast<float*>(v.ptr), n,
                                          lr, beta1, beta2, eps, wd, step, nullptr));
  return env.Undefined();
}

// nesterovStep(param, delta, momentumBuffer, lr, momentum)
Napi::Value Nesterov(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceArg p = typedArg(env, info[0], "param", DType::kFloat32);
  const size_t n = p.buffer->length();
  DeviceArg d = typedArg(env, info[1], "delta", DType::kFloat32, n);
  DeviceArg b = typedArg(env, info[2], "momentumBuffer", DType::kFloat32, n);
  checkTogether(env, {&p, &d, &b});
  const float lr = float(numberArg(env, info[3], "lr"));
  const float mu = float(numberArg(env, info[4], "momentum"));
  Launch l = prepare(env, p.buffer->device());
  finish(env, l, "collectives_cuda_nesterov",
         l.kernels.collectives_cuda_nesterov(static_cast<float*>(p.ptr), static_cast<const float*>(d.ptr),
                                             static_cast<float*>(b.ptr), n, lr, mu, nullptr));
  return env.Undefined();
}

// axpy(a, x, y): y += a * x; x may be y itself, not a part of it.
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const float alpha = float(numberArg(env, info[0], "a"));
  DeviceArg x = typedArg(env, info[1], "x", DType::kFloat32);
  DeviceArg y = typedArg(env, info[2], "y", DType::kFloat32, x.buffer->length());
  const bool same = x.begin == y.begin && x.buffer->allocation() == y.buffer->allocation();
  if (!same) checkTogether(env, {&x, &y});
  Launch l = prepare(env, x.buffer->device());
  finish(env, l, "collectives_cuda_axpy",
         l.kernels.collectives_cuda_axpy(x.buffer->length(), alpha, static_cast<const float*>(x.ptr),
                                         static_cast<float*>(y.ptr), nullptr));
  return env.Undefined();
}

// scale(x, a): x *= a
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceArg x = typedArg(env, info[0], "x", DType::kFloat32);
  const float alpha = float(numberArg(env, info[1], "a"));
  Launch l = prepare(env, x.buffer->device());
  finish(env, l, "collectives_cuda_scale",
         l.kernels.collectives_cuda_scale(x.buffer->length(), alpha, static_cast<float*>(x.ptr), nullptr));
  return env.Undefined();
}

// cast(input, output): the dtypes are the buffers'.
Napi::Value Cast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceArg in = floatArg(env, info[0], "input");
  DeviceArg out = floatArg(env, info[1], "output");
  if (out.buffer->length() != in.buffer->length()) {
    throwRangeError(env, "output: expected " + std::to_string(in.buffer->length()) +
                             " elements, got " + std::to_string(out.buffer->length()));
  }
  checkTogether(env, {&in, &out});
  Launch l = prepare(env, in.buffer->device());
  finish(env, l, "collectives_cuda_cast",
         l.kernels.collectives_cuda_cast(in.ptr, int(in.buffer->dtype()), out.ptr,
                                         int(out.buffer->dtype()), in.buffer->length(), nullptr));
  return env.Undefined();
}

// quantize(input, format, blockSize, output, residual | null, seed | null):
// one chunk, as the host quantize() writes it (the same stream key and index
// base, so the same bytes).
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceArg in = floatArg(env, info[0], "input");
  const quant::Format format = quant::formatArg(env, info[1]);
  const size_t blockSize = quant::blockSizeArg(env, info[2]);
  const size_t count = in.buffer->length();
  DeviceArg out = typedArg(env, info[3], "output", DType::kUint8,
                           quant::chunkBytes(count, format, blockSize));
  checkAligned(env, out);
  float* residual = nullptr;
  if (!info[4].IsNull() && !info[4].IsUndefined()) {
    DeviceArg r = typedArg(env, info[4], "residual", DType::kFloat32, count);
    checkTogether(env, {&in, &out, &r});
    residual = static_cast<float*>(r.ptr);
  } else {
    checkTogether(env, {&in, &out});
  }
  uint64_t seed = 0;
  const bool stochastic = quant::seedArg(env, info[5], &seed);
  const uint64_t key = stochastic ? quant::streamKey(seed, 0, 0) : 0;
  Launch l = prepare(env, in.buffer->device());
  finish(env, l, "collectives_cuda_quantize",
         l.kernels.collectives_cuda_quantize(in.ptr, int(in.buffer->dtype()), count, int(format),
                                             blockSize, stochastic ? 1 : 0, key, 0, residual,
                                             out.ptr, nullptr));
  return env.Undefined();
}

// dequantize(bytes, count, format, blockSize, output): output's dtype is its own.
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t count = size_t(intArg(env, info[1], "count", 0, (int64_t(1) << 53) - 1));
  const quant::Format format = quant::formatArg(env, info[2]);
  const size_t blockSize = quant::blockSizeArg(env, info[3]);
  DeviceArg bytes = typedArg(env, info[0], "bytes", DType::kUint8,
                             quant::chunkBytes(count, format, blockSize));
  checkAligned(env, bytes);
  DeviceArg out = floatArg(env, info[4], "output");
  if (out.buffer->length() != count) {
    throwRangeError(env, "output: expected " + std::to_string(count) + " elements, got " +
                             std::to_string(out.buffer->length()));
  }
  checkTogether(env, {&bytes, &out});
  Launch l = prepare(env, bytes.buffer->device());
  finish(env, l, "collectives_cuda_dequantize",
         l.kernels.collectives_cuda_dequantize(bytes.ptr, count, int(format), blockSize,
                                               int(out.buffer->dtype()), out.ptr, nullptr));
  return env.Undefined();
}

}  // namespace

void registerDeviceOps(Napi::Env env, Napi::Object gpu) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("adamwStep", Napi::Function::New(env, AdamW, "adamwStep"));
  o.Set("nesterovStep", Napi::Function::New(env, Nesterov, "nesterovStep"));
  o.Set("axpy", Napi::Function::New(env, Axpy, "axpy"));
  o.Set("scale", Napi::Function::New(env, Scale, "scale"));
  o.Set("cast", Napi::Function::New(env, Cast, "cast"));
  o.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  o.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  gpu.Set("ops", o);
}

}  // namespace gpu
}  // namespace collectives
