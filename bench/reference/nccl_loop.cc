// nccl-loop: the C++ side of bench/gpu-call-cost.js. Calls NCCL directly, with
// no Node.js between, the way that benchmark calls it through the package: a
// 1-rank communicator on device 0, N one-element float32 sum all-reduces in
// place on one stream, timed in two modes:
//   pipelined: all N issued, then one synchronize; per call = total / N
//   awaited:   a synchronize after each call;       per call = total / N
// Prints one JSON line. NCCL has no headers on the machines this runs on, so
// the few functions used are declared here and libnccl.so.2 is opened at run
// time, found the way the addon finds it (native/gpu/dynamic_library.cc:
// COLLECTIVES_NCCL_LIBRARY, LD_LIBRARY_PATH, CUDA folders, pip wheels).
//
//   nccl-loop [--iters N] [--warmup W]
// Exit status: 0 measured, 1 failed, 2 usage error, 77 no GPU or no NCCL.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gpu/lazy_library.h"

namespace {

// NCCL's C API, as nccl.h declares it (stable since 2.0).
typedef int ncclResult_t;
typedef struct ncclComm* ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;
constexpr int kNcclFloat32 = 7;
constexpr int kNcclSum = 0;

struct Nccl {
  ncclResult_t (*getVersion)(int*);
  ncclResult_t (*getUniqueId)(ncclUniqueId*);
  ncclResult_t (*commInitRank)(ncclComm_t*, int, ncclUniqueId, int);
  ncclResult_t (*commDestroy)(ncclComm_t);
  ncclResult_t (*allReduce)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t);
  const char* (*getErrorString)(ncclResult_t);
};

[[noreturn]] void fail(int status, const std::string& message) {
  std::fprintf(stderr, "nccl-loop: %s\n", message.c_str());
  std::exit(status);
}

void cudaOk(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(1, std::string(what) + ": " + cudaGetErrorString(e));
}

void ncclOk(const Nccl& nccl, ncclResult_t r, const char* what) {
  if (r != 0) fail(1, std::string(what) + ": " + nccl.getErrorString(r));
}

long positive(const char* flag, const char* value) {
  char* end = nullptr;
  long n = value ? std::strtol(value, &end, 10) : 0;
  if (!value || *end != '\0' || n < 1) {
    fail(2, std::string(flag) + ": expected a positive integer, got '" + (value ? value : "") + "'");
  }
  return n;
}

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

using collectives::gpu::bindSymbol;
using NcclLibrary = collectives::gpu::LazyLibrary<collectives::gpu::LibraryStatus<Nccl>, Nccl>;

bool bindNccl(const collectives::gpu::DynamicLibrary& lib, Nccl& nccl,
              collectives::gpu::LibraryStatus<Nccl>&) {
  bindSymbol(lib, nccl.getVersion, "ncclGetVersion");
  bindSymbol(lib, nccl.getUniqueId, "ncclGetUniqueId");
  bindSymbol(lib, nccl.commInitRank, "ncclCommInitRank");
  bindSymbol(lib, nccl.commDestroy, "ncclCommDestroy");
  bindSymbol(lib, nccl.allReduce, "ncclAllReduce");
  bindSymbol(lib, nccl.getErrorString, "ncclGetErrorString");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long iters = 10000;
  long warmup = 100;
  for (int i = 1; i < argc; i++) {
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (std::strcmp(argv[i], "--iters") == 0) {
      iters = positive("--iters", value), i++;
    } else if (std::strcmp(argv[i], "--warmup") == 0) {
      warmup = positive("--warmup", value), i++;
    } else {
      fail(2, std::string("unknown argument '") + argv[i] + "': expected --iters N or --warmup W");
    }
  }

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 1) fail(77, "skipped: no CUDA device");
  cudaOk(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop{};
  cudaOk(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");

  collectives::gpu::LibrarySearch search;
  search.names = {"libnccl.so.2"};
  search.overrideEnv = "COLLECTIVES_NCCL_LIBRARY";
  search.wheelDirs = {"nvidia/nccl/lib", "nvidia/cu13/lib"};
  NcclLibrary library({search, "libnccl.so.2", "", "", bindNccl});
  const auto& loaded = library.status();
  // Found but unusable is a failure; not found at all, a machine without NCCL.
  if (!loaded.api && loaded.library.empty()) fail(77, "skipped: " + loaded.reason);
  if (!loaded.api) fail(1, loaded.reason);
  const Nccl& nccl = *loaded.api;
  int version = 0;
  ncclOk(nccl, nccl.getVersion(&version), "ncclGetVersion");

  // The addon's stream is non-blocking too (native/gpu/nccl_backend.cc).
  cudaStream_t stream;
  cudaOk(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  ncclUniqueId id;
  ncclOk(nccl, nccl.getUniqueId(&id), "ncclGetUniqueId");
  ncclComm_t comm;
  ncclOk(nccl, nccl.commInitRank(&comm, 1, id, 0), "ncclCommInitRank");
  float* buf = nullptr;
  cudaOk(cudaMalloc(&buf, sizeof(float)), "cudaMalloc");
  const float one = 1.0f;
  cudaOk(cudaMemcpy(buf, &one, sizeof one, cudaMemcpyHostToDevice), "cudaMemcpy");

  auto call = [&] { ncclOk(nccl, nccl.allReduce(buf, buf, 1, kNcclFloat32, kNcclSum, comm, stream), "ncclAllReduce"); };
  // Warm-up: NCCL's first calls set up its kernels and proxy; keep that out.
  for (long i = 0; i < warmup; i++) call();
  cudaOk(cudaStreamSynchronize(stream), "cudaStreamSynchronize");

  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; i++) call();
  cudaOk(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  double pipelined = seconds(std::chrono::steady_clock::now() - t0) * 1e6 / iters;

  t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < iters; i++) {
    call();
    cudaOk(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  double awaited = seconds(std::chrono::steady_clock::now() - t0) * 1e6 / iters;

  // On one rank a sum is the identity: the value must still be 1.
  float back = 0;
  cudaOk(cudaMemcpy(&back, buf, sizeof back, cudaMemcpyDeviceToHost), "cudaMemcpy");
  if (back != one) fail(1, "all-reduce result " + std::to_string(back) + ", expected 1");

  ncclOk(nccl, nccl.commDestroy(comm), "ncclCommDestroy");
  cudaFree(buf);
  cudaStreamDestroy(stream);
  std::printf(
      "{\"device\":\"%s\",\"nccl\":\"%d.%d.%d\",\"library\":\"%s\",\"iters\":%ld,\"warmup\":%ld,"
      "\"pipelined_us\":%.4f,\"awaited_us\":%.4f}\n",
      prop.name, version / 10000, (version / 100) % 100, version % 100, loaded.library.c_str(), iters,
      warmup, pipelined, awaited);
  return 0;
}
