// The Communicator's quantized collectives over DeviceBuffers (declared in
// communicator.h): the steps of quant/quantized_ops.cc with the CUDA codec
// kernels and NCCL's byte exchanges, all enqueued on the NCCL backend's
// stream by the queue thread, and one completion event for the whole call
// (awaited on the waiter thread like every device call). Same arguments and
// rules as the host form, and the same bytes for the same input.
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "communicator.h"
#include "device_calls.h"
#include "errors.h"
#include "gpu/device_quant_engine.h"
#include "gpu/kernels_api.h"
#include "quant/quant_args.h"
#include "quant/quantized_ops.h"

namespace collectives {

// deviceQuantized(kind, input, output | null, format, blockSize, op,
//                 errorFeedback | null, seed | null, timeoutMs)
Napi::Value Communicator::DeviceQuantized(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const quant::QuantKind k = quant::QuantKind(intArg(env, info[0], "kind", 0, 3));
  const char* operation = quant::quantKindName(k);
  checkOpen(env, operation);
  const bool allReduce = k == quant::QuantKind::kAllReduce;
  const char* inName = allReduce ? "buffer" : "input";
  const char* outName = allReduce ? "options.output" : "output";
  gpu::DeviceBuffer* in = deviceArg(env, info[1], inName);
  const bool haveOut = !(info[2].IsNull() || info[2].IsUndefined());
  if (!haveOut && !allReduce) deviceArg(env, info[2], outName);
  gpu::DeviceBuffer* out = haveOut ? deviceArg(env, info[2], outName) : in;
  const DType dtype = in->dtype();
  if (!quant::quantizable(dtype)) {
    throwTypeError(env, std::string(inName) +
                            ": expected a DeviceBuffer of float32, float16 or bfloat16, got " +
                            dtypeName(dtype));
  }
  if (out->dtype() != dtype) {
    throwTypeError(env, std::string(outName) + ": expected a DeviceBuffer of " +
                            dtypeName(dtype) + ", got " + dtypeName(out->dtype()));
  }
  quant::QuantSpec spec;
  spec.format = quant::formatArg(env, info[3]);
  spec.blockSize = quant::blockSizeArg(env, info[4]);
  const RedOp op = quant::quantRedOpArg(env, info[5], k, dtype);
  spec.stochastic = quant::seedArg(env, info[7], &spec.seed);
  const Millis timeout = timeoutArg(env, info[8]);
  const quant::QuantShape shape = quant::quantShapeArg(env, k, in->length(), out->length(), size_);
  const size_t count = shape.count;
  const size_t residualLength = shape.residualLength;
  gpu::DeviceBuffer* residual = nullptr;
  if (!(info[6].IsNull() || info[6].IsUndefined())) {
    residual = deviceArg(env, info[6], "options.errorFeedback");
    if (residual->dtype() != DType::kFloat32) {
      throwTypeError(env, std::string("options.errorFeedback: expected a float32 DeviceBuffer, got ") +
                              dtypeName(residual->dtype()));
    }
    checkLength(env, "options.errorFeedback", residual->length(), residualLength,
                "the residual's length for this call");
    if (residual->device() != in->device()) {
      throwRangeError(env, "options.errorFeedback: expected a DeviceBuffer on device " +
                               std::to_string(in->device()) + ", got device " +
                               std::to_string(residual->device()));
    }
    if (residual->overlaps(*in) || residual->overlaps(*out)) {
      throwRangeError(env, "options.errorFeedback: must not overlap the input's or output's memory");
    }
  }
  if (out->device() != in->device()) {
    throwRangeError(env, std::string(outName) + ": expected a DeviceBuffer on device " +
                             std::to_string(in->device()) + ", got device " +
                             std::to_string(out->device()));
  }
  if (!nccl_) nccl_ = std::make_shared<NcclState>();
  checkDevice(env, *nccl_, *in, inName);
  const gpu::KernelsStatus& ks = gpu::kernels();
  if (!ks.available) {
    throwCoded(env, codes::kBackendUnavailable,
               std::string(operation) + ": the CUDA kernels library is not available: " + ks.reason);
  }
  const gpu::KernelsApi* kernels = ks.api;
  const void* inData = in->data(env);
  void* outData = out->data(env);
  float* residualData = residual ? static_cast<float*>(residual->data(env)) : nullptr;
  std::vector<std::pair<Napi::Value, gpu::DeviceBuffer*>> used = {{info[1], in}};
  if (haveOut) used.push_back({info[2], out});
  if (residual) used.push_back({info[6], residual});
  std::unique_ptr<Work> work = newDeviceWork(info, operation, used, timeout);
  Work* raw = work.get();
  auto state = nccl_;
  auto rendezvous = rendezvous_;
  const int rank = rank_, size = size_;
  work->run = [=](std::shared_ptr<Backend>&) {
    if (state->groupOpen) {
      // The kernels would run at once and the exchanges only at the group's end.
      throw CollectiveFailure(codes::kInvalidArgument,
                              std::string(operation) + ": quantized collectives cannot run inside group()");
    }
    gpu::NcclBackend& nb = ncclOn(*state, *rendezvous, rank, size, timeout);
    nb.makeCurrent();
    gpu::DeviceQuantEngine engine(
        *kernels, nb.cudaApi(), nb.stream(), nb.scratch(), rank, size,
        [&nb, timeout](const uint8_t* send, uint8_t* recv, size_t slot) {
          nb.allToAll(send, recv, slot, DType::kUint8, timeout);
        },
        [&nb, timeout](const uint8_t* send, uint8_t* recv, size_t slot) {
          nb.allGather(send, recv, slot, DType::kUint8, timeout);
        });
    quant::runQuantized(k, engine, inData, outData, count, dtype, op, spec, residualData);
    // One event after the last kernel: the Work completes when all of it has run.
    nb.recordCompletion(operation, timeout);
    raw->transfer = nb.takeCompletion();
  };
  diagnostics_->guard(*work, quantizedSignature(k, dtype, count, op, spec, true), timeout);
  return queue_->push(env, std::move(work));
}

}  // namespace collectives
