#include "gpu/device_buffer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "addon_data.h"
#include "args.h"
#include "errors.h"
#include "gpu/cuda_api.h"
#include "gpu/kernels_api.h"
#include "gpu/nccl_api.h"

namespace collectives {
namespace gpu {
namespace {

// The loaded runtime with at least one device, or BACKEND_UNAVAILABLE.
const CudaApi& requireCuda(Napi::Env env) {
  const CudaStatus& s = cuda();
  if (!s.available) throwCoded(env, codes::kBackendUnavailable, "CUDA is not available: " + s.reason);
  return *s.api;
}

void check(Napi::Env env, const CudaApi& api, const char* what, cudaError_t err) {
  if (err != cudaSuccess) throwCoded(env, codes::kInternal, api.describe(what, err));
}

const CudaApi& onDevice(Napi::Env env, int device) {
  const CudaApi& api = requireCuda(env);
  check(env, api, "cudaSetDevice", api.cudaSetDevice(device));
  return api;
}

// The bytes of one element holding `value` (validated in TypeScript first).
std::vector<uint8_t> elementBytes(Napi::Env env, DType dtype, const Napi::Value& value) {
  std::vector<uint8_t> out(dtypeSize(dtype));
  if (dtype == DType::kInt64) {
    int64_t v = 0;
    if (value.IsBigInt()) {
      bool lossless = false;
      v = value.As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless) throwRangeError(env, "value: expected a bigint that fits in int64");
    } else if (value.IsNumber()) {
      double d = value.As<Napi::Number>().DoubleValue();
      if (d != std::floor(d) || std::fabs(d) > 9007199254740991.0) {
        throwRangeError(env, "value: expected a safe integer or a bigint for int64");
      }
      v = static_cast<int64_t>(d);
    } else {
      throwTypeError(env, "value: expected a bigint or a number for int64");
    }
    std::memcpy(out.data(), &v, sizeof v);
    return out;
  }
  if (!value.IsNumber()) throwTypeError(env, std::string("value: expected a number for ") + dtypeName(dtype));
  double d = value.As<Napi::Number>().DoubleValue();
  auto integer = [&](double lo, double hi) {
    if (d != std::floor(d) || d < lo || d > hi) {
      throwRangeError(env, std::string("value: expected an integer from ") +
                               std::to_string(int64_t(lo)) + " to " + std::to_string(int64_t(hi)) +
                               " for " + dtypeName(dtype));
    }
  };
  switch (dtype) {
    case DType::kFloat32: { float f = float(d); std::memcpy(out.data(), &f, 4); break; }
    case DType::kFloat64: std::memcpy(out.data(), &d, 8); break;
    case DType::kFloat16:
    case DType::kBFloat16: { uint16_t h = floatToHalfBits(dtype, float(d)); std::memcpy(out.data(), &h, 2); break; }
    case DType::kInt8: { integer(-128, 127); int8_t v = int8_t(d); std::memcpy(out.data(), &v, 1); break; }
    case DType::kUint8: { integer(0, 255); uint8_t v = uint8_t(d); std::memcpy(out.data(), &v, 1); break; }
    case DType::kInt32: { integer(-2147483648.0, 2147483647.0); int32_t v = int32_t(d); std::memcpy(out.data(), &v, 4); break; }
    case DType::kInt64: break;
  }
  return out;
}

Napi::Object statusObject(Napi::Env env, bool available, const std::string& library,
                          const std::string& version, const std::string& reason,
                          const std::vector<LoadAttempt>& tried) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", Napi::Boolean::New(env, available));
  if (!library.empty()) o.Set("library", Napi::String::New(env, library));
  if (!version.empty()) o.Set("version", Napi::String::New(env, version));
  if (!available) o.Set("reason", Napi::String::New(env, reason));
  Napi::Array list = Napi::Array::New(env, tried.size());
  for (size_t i = 0; i < tried.size(); ++i) {
    list.Set(uint32_t(i), Napi::String::New(env, tried[i].path + ": " + tried[i].error));
  }
  o.Set("tried", list);
  return o;
}

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CudaStatus& c = cuda();
  Napi::Object out = Napi::Object::New(env);
  Napi::Object co = statusObject(env, c.available, c.library, cudaVersionString(c.runtimeVersion),
                                 c.reason, c.tried);
  if (c.api) {
    co.Set("devices", Napi::Number::New(env, c.devices));
    if (c.driverVersion > 0) co.Set("driverVersion", Napi::String::New(env, cudaVersionString(c.driverVersion)));
  }
  // The kernels of the device operations (lib/ops/, lib/core/quantized.ts): a
  // library of their own, so CUDA can be available while they are not.
  const KernelsStatus& k = kernels();
  co.Set("kernels", statusObject(env, k.available, k.library,
                                 k.version > 0 ? std::to_string(k.version) : "", k.reason, k.tried));
  out.Set("cuda", co);
  const NcclStatus& n = nccl();
  out.Set("nccl", statusObject(env, n.available, n.library, ncclVersionString(n.version), n.reason,
                               n.tried));
  return out;
}

}  // namespace

void DeviceAllocation::markFreed() {
  freed = true;
  if (leases == 0) release();
}

void DeviceAllocation::release() {
  freed = true;
  if (!ptr) return;
  const CudaStatus& s = cuda();
  if (s.api) {
    // Errors are ignored: at exit the runtime may already be shutting down.
    int current = 0;
    bool restore = s.api->cudaGetDevice(&current) == cudaSuccess && current != device;
    s.api->cudaSetDevice(device);
    s.api->cudaFree(ptr);
    if (restore) s.api->cudaSetDevice(current);
  }
  ptr = nullptr;
}

Napi::Function DeviceBuffer::Define(Napi::Env env) {
  return DefineClass(env, "NativeDeviceBuffer",
                     {
                         InstanceAccessor<&DeviceBuffer::GetDType>("dtype"),
                         InstanceAccessor<&DeviceBuffer::GetLength>("length"),
                         InstanceAccessor<&DeviceBuffer::GetByteLength>("byteLength"),
                         InstanceAccessor<&DeviceBuffer::GetByteOffset>("byteOffset"),
                         InstanceAccessor<&DeviceBuffer::GetDevice>("device"),
                         InstanceAccessor<&DeviceBuffer::GetFreed>("freed"),
                         InstanceAccessor<&DeviceBuffer::GetIsView>("isView"),
                         InstanceMethod<&DeviceBuffer::CopyFrom>("copyFrom"),
                         InstanceMethod<&DeviceBuffer::CopyTo>("copyTo"),
                         InstanceMethod<&DeviceBuffer::Fill>("fill"),
                         InstanceMethod<&DeviceBuffer::Free>("free"),
                     });
}

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  Napi::Env env = info.Env();
  auto* data = env.GetInstanceData<AddonData>();
  if (info.Length() >= 1 && info[0].IsObject() &&
      info[0].As<Napi::Object>().InstanceOf(data->deviceBufferConstructor.Value())) {
    DeviceBuffer* parent = Unwrap(info[0].As<Napi::Object>());
    parent->checkUsable(env, "subarray");
    int64_t begin = intArg(env, info[1], "begin", 0, int64_t(parent->length_));
    int64_t end = intArg(env, info[2], "end", begin, int64_t(parent->length_));
    allocation_ = parent->allocation_;
    dtype_ = parent->dtype_;
    offset_ = parent->offset_ + size_t(begin) * dtypeSize(dtype_);
    length_ = size_t(end - begin);
    return;
  }
  dtype_ = dtypeArg(env, info[0]);
  int64_t maxLength = int64_t(9007199254740991LL / int64_t(dtypeSize(dtype_)));
  length_ = size_t(intArg(env, info[1], "length", 0, maxLength));
  int device = int(intArg(env, info[2], "device", 0, std::numeric_limits<int>::max()));
  const CudaApi& api = requireCuda(env);
  if (device >= cuda().devices) {
    throwRangeError(env, "device: expected a device from 0 to " + std::to_string(cuda().devices - 1) +
                             ", got " + std::to_string(device));
  }
  check(env, api, "cudaSetDevice", api.cudaSetDevice(device));
  auto allocation = std::make_shared<DeviceAllocation>();
  allocation->device = device;
  allocation->bytes = length_ * dtypeSize(dtype_);
  if (allocation->bytes > 0) {
    cudaError_t err = api.cudaMalloc(&allocation->ptr, allocation->bytes);
    if (err != cudaSuccess) {
      allocation->ptr = nullptr;
      throwCoded(env, codes::kInternal,
                 api.describe(("cudaMalloc of " + std::to_string(allocation->bytes) +
                               " bytes on device " + std::to_string(device)).c_str(),
                              err));
    }
  }
  allocation_ = std::move(allocation);
  owner_ = true;
}

void DeviceBuffer::checkUsable(Napi::Env env, const char* operation) const {
  if (freed()) {
    throwCoded(env, codes::kDestroyed,
               std::string(operation) + ": the DeviceBuffer was freed" +
                   (owner_ || detached_ ? "" : " (its parent buffer was freed)"));
  }
}

namespace {

struct Lease {
  explicit Lease(std::shared_ptr<DeviceAllocation> a) : allocation(std::move(a)) {
    allocation->leases++;
  }
  ~Lease() {
    if (--allocation->leases == 0 && allocation->freed) allocation->release();
  }
  std::shared_ptr<DeviceAllocation> allocation;
};

}  // namespace

std::shared_ptr<void> DeviceBuffer::lease() const {
  return allocation_ ? std::make_shared<Lease>(allocation_) : nullptr;
}

DeviceBuffer* DeviceBuffer::from(Napi::Env env, const Napi::Value& v, const char* name) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (!v.IsObject() || data->deviceBufferConstructor.IsEmpty() ||
      !v.As<Napi::Object>().InstanceOf(data->deviceBufferConstructor.Value())) {
    throwTypeError(env, std::string(name) + ": expected a DeviceBuffer");
  }
  return Unwrap(v.As<Napi::Object>());
}

bool DeviceBuffer::overlaps(const DeviceBuffer& other) const {
  if (!allocation_ || allocation_ != other.allocation_) return false;
  const size_t end = offset_ + length_ * dtypeSize(dtype_);
  const size_t otherEnd = other.offset_ + other.length_ * dtypeSize(other.dtype_);
  return offset_ < end && other.offset_ < otherEnd && offset_ < otherEnd && other.offset_ < end;
}

void* DeviceBuffer::data(Napi::Env env) const {
  checkUsable(env, "data");
  return static_cast<char*>(allocation_->ptr) + offset_;
}

Napi::Value DeviceBuffer::GetDType(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), int(dtype_));
}
Napi::Value DeviceBuffer::GetLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(length_));
}
Napi::Value DeviceBuffer::GetByteLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(length_ * dtypeSize(dtype_)));
}
Napi::Value DeviceBuffer::GetByteOffset(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(offset_));
}
Napi::Value DeviceBuffer::GetDevice(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), device());
}
Napi::Value DeviceBuffer::GetFreed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), freed());
}
Napi::Value DeviceBuffer::GetIsView(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !owner_);
}

// The host array in info[0] and where in this buffer it goes (from info[1],
// in elements), checked to fit; `name` is the argument's name in messages.
DeviceBuffer::HostSpan DeviceBuffer::hostSpan(const Napi::CallbackInfo& info, const char* name) {
  Napi::Env env = info.Env();
  ArrayView host = arrayArg(env, info[0], name, dtype_);
  int64_t offset = intArg(env, info[1], "offset", 0, int64_t(length_));
  if (host.length > length_ - size_t(offset)) {
    throwRangeError(env, std::string(name) + ": expected at most " +
                             std::to_string(length_ - size_t(offset)) + " elements (length " +
                             std::to_string(length_) + " from offset " + std::to_string(offset) +
                             "), got " + std::to_string(host.length));
  }
  char* device = static_cast<char*>(allocation_->ptr) + offset_ + size_t(offset) * dtypeSize(dtype_);
  return {host, device};
}

Napi::Value DeviceBuffer::CopyFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkUsable(env, "copyFrom");
  HostSpan span = hostSpan(info, "source");
  if (span.host.bytes == 0) return info.This();
  const CudaApi& api = onDevice(env, device());
  check(env, api, "cudaMemcpy (host to device)",
        api.cudaMemcpy(span.device, span.host.data, span.host.bytes, cudaMemcpyHostToDevice));
  return info.This();
}

Napi::Value DeviceBuffer::CopyTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkUsable(env, "copyTo");
  HostSpan span = hostSpan(info, "target");
  if (span.host.bytes == 0) return info[0];
  const CudaApi& api = onDevice(env, device());
  check(env, api, "cudaMemcpy (device to host)",
        api.cudaMemcpy(span.host.data, span.device, span.host.bytes, cudaMemcpyDeviceToHost));
  return info[0];
}

Napi::Value DeviceBuffer::Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  checkUsable(env, "fill");
  std::vector<uint8_t> element = elementBytes(env, dtype_, info[0]);
  size_t bytes = length_ * dtypeSize(dtype_);
  if (bytes == 0) return info.This();
  const CudaApi& api = onDevice(env, device());
  char* dst = static_cast<char*>(allocation_->ptr) + offset_;
  if (std::all_of(element.begin(), element.end(), [&](uint8_t b) { return b == element[0]; })) {
    check(env, api, "cudaMemset", api.cudaMemset(dst, element[0], bytes));
    return info.This();
  }
  // A host staging block of whole elements, copied as often as it takes.
  constexpr size_t kStage = size_t(1) << 22;
  size_t stageBytes = std::min(bytes, kStage - kStage % element.size());
  std::vector<uint8_t> stage(stageBytes);
  for (size_t i = 0; i < stageBytes; i += element.size()) {
    std::memcpy(stage.data() + i, element.data(), element.size());
  }
  for (size_t done = 0; done < bytes; done += stageBytes) {
    size_t n = std::min(stageBytes, bytes - done);
    check(env, api, "cudaMemcpy (fill)", api.cudaMemcpy(dst + done, stage.data(), n, cudaMemcpyHostToDevice));
  }
  return info.This();
}

Napi::Value DeviceBuffer::Free(const Napi::CallbackInfo& info) {
  // A second free() is a no-op, as close() is. Memory an in-flight operation
  // still uses is released when that operation settles. A view's free() only detaches
  // the view; the allocation belongs to the buffer that made it.
  if (owner_) {
    if (allocation_) allocation_->markFreed();
  } else {
    detached_ = true;
  }
  return info.Env().Undefined();
}

void registerExports(Napi::Env env, Napi::Object exports) {
  auto* data = env.GetInstanceData<AddonData>();
  data->deviceBufferConstructor = Napi::Persistent(DeviceBuffer::Define(env));
  Napi::Object gpu = Napi::Object::New(env);
  gpu.Set("backends", Napi::Function::New(env, &Backends, "backends"));
  gpu.Set("DeviceBuffer", data->deviceBufferConstructor.Value());
  exports.Set("gpu", gpu);
}

}  // namespace gpu
}  // namespace collectives
