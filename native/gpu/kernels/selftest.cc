// collectives_cuda_selftest: runs every kernel of libcollectives_cuda on the
// first GPU and compares it with the host code on the same input: the codecs
// byte for byte (payload, scales, residuals, outputs), the elementwise
// kernels bit for bit (AdamW and Nesterov: at most 1 ulp is tolerated and
// reported, "within float32 rounding"). --bench adds codec throughput
// against a device-to-device copy. Exit status: 0 pass, 1 fail, 77 no GPU
// (the test harness's "skipped").
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../ops/elementwise.h"
#include "../../quant/codec.h"
#include "kernels.h"

using namespace collectives;

namespace {

int failures = 0;
int checks = 0;

#define CUDA_OK(call)                                                                   \
  do {                                                                                  \
    cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess) {                                                            \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                \
                   cudaGetErrorString(e_));                                             \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)

void kernelOk(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "%s: %s\n", what, collectives_cuda_error_string(rc));
    std::exit(1);
  }
  CUDA_OK(cudaDeviceSynchronize());
}

template <typename T>
struct Device {
  T* p = nullptr;
  size_t n = 0;
  explicit Device(size_t count) : n(count) { CUDA_OK(cudaMalloc(&p, (count ? count : 1) * sizeof(T))); }
  Device(const std::vector<T>& v) : Device(v.size()) { put(v); }
  ~Device() { cudaFree(p); }
  void put(const std::vector<T>& v) { CUDA_OK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    CUDA_OK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
};

void expectSameBytes(const void* a, const void* b, size_t bytes, const std::string& what) {
  checks++;
  if (std::memcmp(a, b, bytes) != 0) {
    size_t i = 0;
    while (static_cast<const uint8_t*>(a)[i] == static_cast<const uint8_t*>(b)[i]) i++;
    std::printf("FAIL %s: first difference at byte %zu of %zu\n", what.c_str(), i, bytes);
    failures++;
  }
}

int64_t ulps(float a, float b) {
  int32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  if (x < 0) x = int32_t(0x80000000u) - x;
  if (y < 0) y = int32_t(0x80000000u) - y;
  return std::llabs(int64_t(x) - int64_t(y));
}

void expectWithinUlp(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  checks++;
  int64_t worst = 0;
  for (size_t i = 0; i < a.size(); i++) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    worst = std::max(worst, ulps(a[i], b[i]));
  }
  if (worst > 1) {
    std::printf("FAIL %s: %lld ulp apart\n", what.c_str(), (long long)worst);
    failures++;
  } else if (worst == 1) {
    std::printf("note %s: within 1 ulp, not bitwise equal\n", what.c_str());
  }
}

// Inputs with every case the codecs special-case: zero blocks, subnormals,
// huge values, NaN and Inf blocks, ties.
std::vector<float> codecInput(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; i++) x[i] = normal(rng) * std::ldexp(1.0f, int(i / 97 % 40) - 20);
  for (size_t i = 0; i < n && i < 64; i++) x[i] = 0.0f;
  if (n > 300) {
    x[270] = std::nanf("");
    x[530 % n] = INFINITY;
    x[531 % n] = -INFINITY;
    x[n - 5] = 3.0e38f;
    x[n - 6] = 1e-40f;
  }
  return x;
}

std::vector<uint16_t> toHalf(const std::vector<float>& x, DType t) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); i++) h[i] = floatToHalfBits(t, x[i]);
  return h;
}

void testCodecs() {
  std::mt19937 rng(12345);
  const quant::Format formats[] = {quant::Format::kInt8, quant::Format::kInt4,
                                   quant::Format::kFp8E4M3, quant::Format::kFp8E5M2};
  const DType dtypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
  const size_t counts[] = {1, 7, 333, 100003};
  const size_t blockSizes[] = {8, 256, 4096};
  for (quant::Format f : formats) {
    for (DType dt : dtypes) {
      for (size_t count : counts) {
        for (size_t bs : blockSizes) {
          for (int mode = 0; mode < 4; mode++) {
            const bool stochastic = mode & 1, feedback = mode & 2;
            const std::string what = "codec format " + std::to_string(int(f)) + " dtype " +
                                     dtypeName(dt) + " count " + std::to_string(count) +
                                     " block " + std::to_string(bs) +
                                     (stochastic ? " stochastic" : "") +
                                     (feedback ? " error-feedback" : "");
            std::vector<float> x = codecInput(count, rng);
            std::vector<uint8_t> inBytes;
            if (dt == DType::kFloat32) {
              inBytes.resize(count * 4);
              std::memcpy(inBytes.data(), x.data(), count * 4);
            } else {
              std::vector<uint16_t> h = toHalf(x, dt);
              inBytes.resize(count * 2);
              std::memcpy(inBytes.data(), h.data(), count * 2);
            }
            std::vector<float> residual(count);
            for (size_t i = 0; i < count; i++) residual[i] = (i % 3 == 0) ? -0.0f : 1e-3f * float(i % 17);
            quant::Rounding rounding;
            rounding.stochastic = stochastic;
            rounding.key = quant::streamKey(7, 1, 2);
            const uint64_t indexBase = 1000;
            const size_t bytes = quant::chunkBytes(count, f, bs);

            std::vector<float> hostResidual = residual;
            std::vector<uint8_t> hostOut(bytes, 0xAB);
            quant::quantizeChunk(inBytes.data(), dt, count, f, bs, rounding, indexBase,
                                 feedback ? hostResidual.data() : nullptr, hostOut.data());

            Device<uint8_t> dIn(inBytes), dOut(bytes);
            CUDA_OK(cudaMemset(dOut.p, 0xAB, bytes));
            Device<float> dRes(residual);
            kernelOk(collectives_cuda_quantize(dIn.p, int(dt), count, int(f), bs, stochastic,
                                               rounding.key, indexBase,
                                               feedback ? dRes.p : nullptr, dOut.p, nullptr),
                     "quantize");
            std::vector<uint8_t> devOut = dOut.get();
            expectSameBytes(hostOut.data(), devOut.data(), bytes, what + ": quantized bytes");
            if (feedback) {
              std::vector<float> r = dRes.get();
              expectSameBytes(hostResidual.data(), r.data(), count * 4, what + ": residual");
            }

            // Dequantize the host's bytes on both sides, into every dtype.
            for (DType od : dtypes) {
              const size_t esize = dtypeSize(od);
              std::vector<uint8_t> h(count * esize), d;
              quant::dequantizeChunk(hostOut.data(), count, f, bs, od, h.data());
              Device<uint8_t> dq(count * esize);
              kernelOk(collectives_cuda_dequantize(dOut.p, count, int(f), bs, int(od), dq.p, nullptr),
                       "dequantize");
              d = dq.get();
              expectSameBytes(h.data(), d.data(), h.size(), what + ": dequantized to " + dtypeName(od));
            }
            std::vector<float> acc(count);
            for (size_t i = 0; i < count; i++) acc[i] = 0.5f * float(i % 5);
            Device<float> dAcc(acc);
            quant::accumulateChunk(hostOut.data(), count, f, bs, acc.data());
            kernelOk(collectives_cuda_dequantize_accumulate(dOut.p, count, int(f), bs, dAcc.p, nullptr),
                     "dequantize_accumulate");
            std::vector<float> da = dAcc.get();
            expectSameBytes(acc.data(), da.data(), count * 4, what + ": dequantize-accumulate");
          }
        }
      }
    }
  }
}

std::vector<float> randomVector(size_t n, std::mt19937& rng, float sd) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void testElementwise() {
  std::mt19937 rng(99);
  const size_t n = 1000003;
  // AdamW: five steps, compared after each.
  {
    std::vector<float> p = randomVector(n, rng, 1.0f), m(n, 0.0f), v(n, 0.0f);
    Device<float> dp(p), dm(m), dv(v), dg(n);
    for (int step = 1; step <= 5; step++) {
      std::vector<float> g = randomVector(n, rng, step == 3 ? 1e-6f : 0.1f);
      dg.put(g);
      ops::adamwHost(ops::adamwScalars(1e-3, 0.9, 0.999, 1e-8, 0.01, step), p.data(), g.data(),
                     m.data(), v.data(), n);
      kernelOk(collectives_cuda_adamw(dp.p, dg.p, dm.p, dv.p, n, 1e-3, 0.9, 0.999, 1e-8, 0.01,
                                      step, nullptr),
               "adamw");
      const std::string s = "adamw step " + std::to_string(step);
      expectWithinUlp(p, dp.get(), s + ": param");
      expectWithinUlp(m, dm.get(), s + ": expAvg");
      expectWithinUlp(v, dv.get(), s + ": expAvgSq");
    }
  }
  // Nesterov: three outer steps.
  {
    std::vector<float> p = randomVector(n, rng, 1.0f), buf(n, 0.0f);
    Device<float> dp(p), db(buf), dd(n);
    for (int step = 1; step <= 3; step++) {
      std::vector<float> delta = randomVector(n, rng, 0.01f);
      dd.put(delta);
      ops::nesterovHost(0.7f, 0.9f, p.data(), delta.data(), buf.data(), n);
      kernelOk(collectives_cuda_nesterov(dp.p, dd.p, db.p, n, 0.7f, 0.9f, nullptr), "nesterov");
      expectWithinUlp(p, dp.get(), "nesterov step " + std::to_string(step) + ": param");
      expectWithinUlp(buf, db.get(), "nesterov step " + std::to_string(step) + ": buffer");
    }
  }
  // axpy, scale: bit for bit.
  {
    std::vector<float> x = randomVector(n, rng, 3.0f), y = randomVector(n, rng, 1.0f);
    Device<float> dx(x), dy(y);
    ops::axpyHost(-0.3f, x.data(), y.data(), n);
    ops::scaleHost(1.7f, x.data(), n);
    kernelOk(collectives_cuda_axpy(n, -0.3f, dx.p, dy.p, nullptr), "axpy");
    kernelOk(collectives_cuda_scale(n, 1.7f, dx.p, nullptr), "scale");
    std::vector<float> gy = dy.get(), gx = dx.get();
    expectSameBytes(y.data(), gy.data(), n * 4, "axpy");
    expectSameBytes(x.data(), gx.data(), n * 4, "scale");
    // divide: as the host's avg divides (3 is not a power of two).
    for (size_t i = 0; i < n; i++) y[i] = y[i] / 3.0f;
    kernelOk(collectives_cuda_divide(n, 3.0f, dy.p, nullptr), "divide");
    std::vector<float> gd = dy.get();
    expectSameBytes(y.data(), gd.data(), n * 4, "divide");
  }
  // cast: every float16 / bfloat16 bit pattern, and float32 values around
  // every rounding boundary, in each direction.
  {
    std::vector<uint16_t> all(65536);
    for (size_t i = 0; i < all.size(); i++) all[i] = uint16_t(i);
    std::vector<float> f32(1 << 20);
    std::uniform_int_distribution<uint32_t> bits;
    for (size_t i = 0; i < f32.size(); i++) {
      uint32_t u = bits(rng);
      if (i % 2) u = (u & 0xffff0000u) | (i % 4 == 1 ? 0x8000u : 0x1000u);  // ties
      std::memcpy(&f32[i], &u, 4);
    }
    const int types[] = {0, 2, 3};
    for (int it : types) {
      for (int ot : types) {
        const size_t n2 = it == 0 ? f32.size() : all.size();
        const void* src = it == 0 ? static_cast<const void*>(f32.data()) : all.data();
        const size_t is = it == 0 ? 4 : 2, os = ot == 0 ? 4 : 2;
        std::vector<uint8_t> h(n2 * os);
        ops::castHost(src, it, h.data(), ot, n2);
        Device<uint8_t> din(n2 * is), dout(n2 * os);
        CUDA_OK(cudaMemcpy(din.p, src, n2 * is, cudaMemcpyHostToDevice));
        kernelOk(collectives_cuda_cast(din.p, it, dout.p, ot, n2, nullptr), "cast");
        std::vector<uint8_t> d = dout.get();
        expectSameBytes(h.data(), d.data(), h.size(),
                        "cast " + std::to_string(it) + " -> " + std::to_string(ot));
      }
    }
  }
}

// A launch's return code, checked without waiting for the kernel (timing).
void launched(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "%s: %s\n", what, collectives_cuda_error_string(rc));
    std::exit(1);
  }
}

// Codec throughput in GB/s of float32 input read (quantize) or output written
// (dequantize), against a device-to-device copy of the same float32 bytes.
void bench() {
  const size_t n = size_t(64) << 20;  // 64 Mi elements: 256 MiB of float32
  const size_t bs = quant::kDefaultBlockSize;
  std::mt19937 rng(1);
  Device<float> x(randomVector(n, rng, 1.0f)), y(n);
  Device<uint8_t> q(quant::chunkBytes(n, quant::Format::kInt8, bs));
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  auto time = [&](auto&& fn) {
    for (int i = 0; i < 3; i++) fn();
    CUDA_OK(cudaEventRecord(a));
    const int iters = 20;
    for (int i = 0; i < iters; i++) fn();
    CUDA_OK(cudaEventRecord(b));
    CUDA_OK(cudaEventSynchronize(b));
    float ms;
    CUDA_OK(cudaEventElapsedTime(&ms, a, b));
    return ms / iters;
  };
  const double gb = double(n) * 4 / 1e9;
  const float copy = time([&] { CUDA_OK(cudaMemcpyAsync(y.p, x.p, n * 4, cudaMemcpyDeviceToDevice)); });
  std::printf("\n%-28s %10s %10s %8s\n", "operation (64Mi float32)", "time ms", "GB/s", "vs copy");
  std::printf("%-28s %10.3f %10.1f %8s\n", "device-to-device copy", copy, gb / (copy / 1e3), "1.00");
  const char* names[] = {"int8", "int4", "fp8e4m3", "fp8e5m2"};
  for (int f = 0; f < 4; f++) {
    const float tq = time([&] {
      launched(collectives_cuda_quantize(x.p, 0, n, f, bs, 0, 0, 0, nullptr, q.p, nullptr), "quantize");
    });
    const float td = time([&] {
      launched(collectives_cuda_dequantize(q.p, n, f, bs, 0, y.p, nullptr), "dequantize");
    });
    const float ta = time([&] {
      launched(collectives_cuda_dequantize_accumulate(q.p, n, f, bs, y.p, nullptr),
               "dequantize_accumulate");
    });
    std::printf("%-28s %10.3f %10.1f %8.2f\n", (std::string("quantize ") + names[f]).c_str(), tq, gb / (tq / 1e3), copy / tq);
    std::printf("%-28s %10.3f %10.1f %8.2f\n", (std::string("dequantize ") + names[f]).c_str(), td, gb / (td / 1e3), copy / td);
    std::printf("%-28s %10.3f %10.1f %8.2f\n", (std::string("dequantize-accumulate ") + names[f]).c_str(), ta, gb / (ta / 1e3), copy / ta);
  }
  const float ts = time([&] {
    launched(collectives_cuda_quantize(x.p, 0, n, 0, bs, 1, 12345, 0, nullptr, q.p, nullptr),
             "quantize stochastic");
  });
  std::printf("%-28s %10.3f %10.1f %8.2f\n", "quantize int8+stochastic", ts, gb / (ts / 1e3), copy / ts);
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    std::printf("collectives_cuda_selftest: skipped: no CUDA device (%s)\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 77;
  }
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("collectives_cuda_selftest: %s (sm_%d%d), kernels API %d\n", prop.name, prop.major,
              prop.minor, collectives_cuda_api_version());
  const auto t0 = std::chrono::steady_clock::now();
  testCodecs();
  testElementwise();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("collectives_cuda_selftest: %d checks, %d failed (%.1f s)\n", checks, failures, s);
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) bench();
  return failures ? 1 : 0;
}
