/* The C API of libcollectives_cuda, the CUDA kernels of the GPU backend.
 *
 * The addon never links this library: it opens it with dlopen only when
 * device memory is used (the loader of the GPU backend), so one prebuilt
 * addon runs without CUDA. The CUDA runtime is linked into it statically;
 * it needs only the driver (libcuda.so.1) at run time.
 *
 * Every function takes device pointers, element counts and a cudaStream_t
 * passed as void* (NULL: the legacy default stream), launches asynchronously
 * on that stream and returns 0, COLLECTIVES_CUDA_EINVAL for bad arguments, or
 * a cudaError_t (> 0) from the launch. Results are those of the host code
 * bit for bit: the codecs run block_math.h, the elementwise kernels
 * ops/elementwise_math.h, built with -fmad=false.
 *
 * dtype codes are native/dtype.h's: 0 float32, 2 float16, 3 bfloat16.
 * format codes are block_math.h's: 0 int8, 1 int4, 2 fp8e4m3, 3 fp8e5m2.
 * Chunks are native/quant/FORMAT.md's layout; a chunk pointer must be 4-byte
 * aligned (its scales are float32). */
#ifndef COLLECTIVES_GPU_KERNELS_H_
#define COLLECTIVES_GPU_KERNELS_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define COLLECTIVES_CUDA_API __attribute__((visibility("default")))
#else
#define COLLECTIVES_CUDA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define COLLECTIVES_CUDA_API_VERSION 1
#define COLLECTIVES_CUDA_EINVAL (-1)

/* COLLECTIVES_CUDA_API_VERSION of the library that was opened. */
COLLECTIVES_CUDA_API int collectives_cuda_api_version(void);

/* A message for a code these functions returned. */
COLLECTIVES_CUDA_API const char* collectives_cuda_error_string(int code);

/* Quantizes `count` elements of `in` (dtype) into one chunk at `out`
 * (chunkBytes(count, format, blockSize) bytes, padding zeroed). stochastic:
 * 0 rounds to nearest-even; otherwise element i uses randomBits(key,
 * indexBase + i) (key as codec.h's streamKey gives it). residual (float32
 * [count], or NULL) is error feedback: added first, then replaced by what was
 * lost. One thread block per quantization block. */
COLLECTIVES_CUDA_API int collectives_cuda_quantize(const void* in, int dtype, size_t count,
                                                   int format, size_t blockSize, int stochastic,
                                                   uint64_t key, uint64_t indexBase,
                                                   float* residual, void* out, void* stream);

/* Dequantizes one chunk of `count` elements into `out` (dtype). */
COLLECTIVES_CUDA_API int collectives_cuda_dequantize(const void* in, size_t count, int format,
                                                     size_t blockSize, int dtype, void* out,
                                                     void* stream);

/* acc[i] += dequantized element i of the chunk (float32): dequantize-and-reduce. */
COLLECTIVES_CUDA_API int collectives_cuda_dequantize_accumulate(const void* in, size_t count,
                                                                int format, size_t blockSize,
                                                                float* acc, void* stream);

/* One AdamW step (PyTorch's semantics, see ops/elementwise_math.h) over n
 * float32 elements; step >= 1. */
COLLECTIVES_CUDA_API int collectives_cuda_adamw(float* param, const float* grad, float* expAvg,
                                                float* expAvgSq, size_t n, double lr,
                                                double beta1, double beta2, double eps,
                                                double weightDecay, int64_t step, void* stream);

/* Nesterov outer step: buf = mu*buf + delta; param -= lr * (delta + mu*buf). */
COLLECTIVES_CUDA_API int collectives_cuda_nesterov(float* param, const float* delta, float* buf,
                                                   size_t n, float lr, float momentum,
                                                   void* stream);

/* y += a * x */
COLLECTIVES_CUDA_API int collectives_cuda_axpy(size_t n, float a, const float* x, float* y,
                                               void* stream);

/* x *= a */
COLLECTIVES_CUDA_API int collectives_cuda_scale(size_t n, float a, float* x, void* stream);

/* x /= d (d != 0): the average's division, as the host divides. */
COLLECTIVES_CUDA_API int collectives_cuda_divide(size_t n, float d, float* x, void* stream);

/* out = in converted (float32 / float16 / bfloat16, round to nearest even). */
COLLECTIVES_CUDA_API int collectives_cuda_cast(const void* in, int inDtype, void* out,
                                               int outDtype, size_t n, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* COLLECTIVES_GPU_KERNELS_H_ */
