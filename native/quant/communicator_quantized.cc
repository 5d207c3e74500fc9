// The Communicator's quantized collectives on host arrays (declared in
// ../communicator.h, kept here beside the codecs). Each is one Work on the
// communicator's queue: quantize, exchange, dequantize (and reduce) all run
// on the queue thread, through the host engine.
#include <string>

#include "../communicator.h"
#include "../args.h"
#include "host_quant_engine.h"
#include "quant_args.h"
#include "quantized_ops.h"

namespace collectives {

// <op>Quantized(input, output, dtype, format, blockSize, op, errorFeedback | null,
//               seed | null, timeoutMs)
Napi::Value Communicator::Quantized(const Napi::CallbackInfo& info, int kind) {
  Napi::Env env = info.Env();
  const quant::QuantKind k = quant::QuantKind(kind);
  const char* operation = quant::quantKindName(k);
  checkOpen(env, operation);
  DType dtype = quant::quantDTypeArg(env, info[2]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  ArrayView out = arrayArg(env, info[1], "output", dtype);
  quant::QuantSpec spec;
  spec.format = quant::formatArg(env, info[3]);
  spec.blockSize = quant::blockSizeArg(env, info[4]);
  const RedOp op = quant::quantRedOpArg(env, info[5], k, dtype);
  spec.stochastic = quant::seedArg(env, info[7], &spec.seed);
  Millis timeout = timeoutArg(env, info[8]);
  const quant::QuantShape shape = quant::quantShapeArg(env, k, in.length, out.length, size_);
  float* residual = quant::residualArg(env, info[6], shape.residualLength, in, out);
  auto work = newWork(info, operation, {in.value, out.value});
  if (residual) work->pin(info[6]);
  const void* inData = in.data;
  void* outData = out.data;
  const size_t count = shape.count;
  // Every input byte is quantized into scratch before any output byte is
  // written, so the input and output may overlap in any way.
  work->run = [=](std::shared_ptr<Backend>& b) {
    quant::HostQuantEngine engine(*b, timeout);
    quant::runQuantized(k, engine, inData, outData, count, dtype, op, spec, residual);
  };
  diagnostics_->guard(*work, quantizedSignature(k, dtype, count, op, spec, false), timeout);
  return queue_->push(env, std::move(work));
}

Napi::Value Communicator::AllToAllQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(quant::QuantKind::kAllToAll));
}
Napi::Value Communicator::ReduceScatterQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(quant::QuantKind::kReduceScatter));
}
Napi::Value Communicator::AllGatherQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(quant::QuantKind::kAllGather));
}
Napi::Value Communicator::AllReduceQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(quant::QuantKind::kAllReduce));
}

}  // namespace collectives
