// The Communicator's quantized collectives (declared in ../communicator.h,
// kept here beside the codecs). Each is one Work on the communicator's queue:
// quantize, exchange, dequantize (and reduce) all run on the queue thread.
#include <string>

#include "../communicator.h"
#include "../args.h"
#include "host_quant_engine.h"
#include "quant_args.h"
#include "quantized_ops.h"

namespace collectives {

namespace {

enum class QuantOp { kAllToAll, kReduceScatter, kAllGather, kAllReduce };

const char* quantOpName(QuantOp k) {
  switch (k) {
    case QuantOp::kAllToAll: return "allToAllQuantized";
    case QuantOp::kReduceScatter: return "reduceScatterQuantized";
    case QuantOp::kAllGather: return "allGatherQuantized";
    case QuantOp::kAllReduce: return "allReduceQuantized";
  }
  return "quantized";
}

}  // namespace

CallSignature quantizedSignature(int kind, DType dtype, size_t count, int32_t redOp,
                                 const quant::QuantSpec& spec, bool device) {
  static const CallKind kinds[] = {CallKind::kAllToAllQuantized, CallKind::kReduceScatterQuantized,
                                   CallKind::kAllGatherQuantized, CallKind::kAllReduceQuantized};
  CallSignature sig{kinds[kind], dtype, true, count, -1, redOp};
  sig.device = device;
  sig.format = int32_t(spec.format);
  sig.blockSize = uint32_t(spec.blockSize);
  return sig;
}

// <op>Quantized(input, output, dtype, format, blockSize, op, errorFeedback | null,
//               seed | null, timeoutMs)
Napi::Value Communicator::Quantized(const Napi::CallbackInfo& info, int kind) {
  Napi::Env env = info.Env();
  const QuantOp k = QuantOp(kind);
  const char* operation = quantOpName(k);
  checkOpen(env, operation);
  DType dtype = quant::quantDTypeArg(env, info[2]);
  ArrayView in = arrayArg(env, info[0], "input", dtype);
  ArrayView out = arrayArg(env, info[1], "output", dtype);
  quant::QuantSpec spec;
  spec.format = quant::formatArg(env, info[3]);
  spec.blockSize = quant::blockSizeArg(env, info[4]);
  RedOp op = RedOp::kSum;
  if (k == QuantOp::kReduceScatter || k == QuantOp::kAllReduce) {
    op = redOpArg(env, info[5], dtype);
    if (op != RedOp::kSum && op != RedOp::kAvg) {
      throwRangeError(env, "op: expected sum or avg for a quantized reduction");
    }
  }
  spec.stochastic = quant::seedArg(env, info[7], &spec.seed);
  Millis timeout = timeoutArg(env, info[8]);
  const size_t n = size_t(size_);
  size_t count = 0;         // elements per rank (all elements for all-reduce)
  size_t residualLength = 0;
  switch (k) {
    case QuantOp::kAllToAll:
      checkLength(env, "output", out.length, in.length, "the input's length");
      if (in.length % n != 0) {
        throwRangeError(env, "input: expected a length divisible by the world size (" +
                                 std::to_string(size_) + "), got " + std::to_string(in.length));
      }
      count = in.length / n;
      residualLength = in.length;
      break;
    case QuantOp::kReduceScatter:
      checkLength(env, "input", in.length, out.length * n, "output length x world size");
      count = out.length;
      residualLength = in.length;
      break;
    case QuantOp::kAllGather:
      checkLength(env, "output", out.length, in.length * n, "input length x world size");
      count = in.length;
      residualLength = in.length;
      break;
    case QuantOp::kAllReduce:
      checkLength(env, "output", out.length, in.length, "the input's length");
      count = in.length;
      residualLength = in.length + quant::shardCount(in.length, size_);
      break;
  }
  float* residual = quant::residualArg(env, info[6], residualLength, in, out);
  auto work = newWork(info, operation, {in.value, out.value});
  if (residual) work->pin(info[6]);
  const void* inData = in.data;
  void* outData = out.data;
  // Every input byte is quantized into scratch before any output byte is
  // written, so the input and output may overlap in any way.
  work->run = [=](std::shared_ptr<Backend>& b) {
    quant::HostQuantEngine engine(*b, timeout);
    switch (k) {
      case QuantOp::kAllToAll:
        quant::allToAllQuantized(engine, inData, outData, count, dtype, spec, residual);
        break;
      case QuantOp::kReduceScatter:
        quant::reduceScatterQuantized(engine, inData, outData, count, dtype, op, spec, residual);
        break;
      case QuantOp::kAllGather:
        quant::allGatherQuantized(engine, inData, outData, count, dtype, spec, residual);
        break;
      case QuantOp::kAllReduce:
        quant::allReduceQuantized(engine, inData, outData, count, dtype, op, spec, residual);
        break;
    }
  };
  const bool reduces = k == QuantOp::kReduceScatter || k == QuantOp::kAllReduce;
  diagnostics_->guard(*work, quantizedSignature(int(k), dtype, count, reduces ? int32_t(op) : -1,
                                                spec, false),
                      timeout);
  return queue_->push(env, std::move(work));
}

Napi::Value Communicator::AllToAllQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(QuantOp::kAllToAll));
}
Napi::Value Communicator::ReduceScatterQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(QuantOp::kReduceScatter));
}
Napi::Value Communicator::AllGatherQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(QuantOp::kAllGather));
}
Napi::Value Communicator::AllReduceQuantized(const Napi::CallbackInfo& info) {
  return Quantized(info, int(QuantOp::kAllReduce));
}

}  // namespace collectives
