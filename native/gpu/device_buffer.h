// DeviceBuffer: device memory of a dtype and length on one device, wrapped
// for JavaScript. Views (subarray) share the allocation through a control
// block: the memory is released once, by free() on the buffer that allocated
// it or when the last buffer or view over it is garbage-collected. A freed
// allocation makes every view over it unusable (DESTROYED).
//
// A collective that reads or writes the memory holds a lease on the
// allocation until its Work settles. free() during such an operation makes
// the buffer unusable at once, as always, but the memory is released only
// when the last lease goes: NCCL never works on memory handed back to CUDA
// (torch's ProcessGroupNCCL likewise keeps a collective's tensors alive until
// its work completes).
//
// Copies and fills are synchronous on the calling thread: they return when
// the device memory holds the data (or the host array does).
#pragma once

#include <cstddef>
#include <memory>

#include <napi.h>

#include "args.h"
#include "dtype.h"

namespace collectives {
namespace gpu {

// One cudaMalloc, shared by a buffer and its views. JS thread only.
struct DeviceAllocation {
  void* ptr = nullptr;
  size_t bytes = 0;
  int device = 0;
  bool freed = false;  // free() was called: unusable from now on
  int leases = 0;      // in-flight operations using the memory
  ~DeviceAllocation() { release(); }
  // free(): releases now, or when the last lease goes.
  void markFreed();
  // cudaFree, once.
  void release();
};

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new DeviceBuffer(dtypeCode, length, device) allocates;
  // new DeviceBuffer(parent, begin, end) is a view of parent's elements [begin, end).
  explicit DeviceBuffer(const Napi::CallbackInfo& info);

  // The DeviceBuffer `v`, or a TypeError naming `name`.
  static DeviceBuffer* from(Napi::Env env, const Napi::Value& v, const char* name);

  // The device pointer of the first element, for a backend (throws DESTROYED when freed).
  void* data(Napi::Env env) const;
  // Whether this buffer and `other` share bytes (views of one allocation).
  bool overlaps(const DeviceBuffer& other) const;
  DType dtype() const { return dtype_; }
  size_t length() const { return length_; }
  int device() const { return allocation_ ? allocation_->device : 0; }
  // Keeps the memory allocated until the returned lease is destroyed (on the
  // JS thread), even if free() is called meanwhile.
  std::shared_ptr<void> lease() const;
  bool freed() const { return detached_ || !allocation_ || allocation_->freed; }
  // The allocation and the byte range in it, to tell whether two buffers overlap.
  const DeviceAllocation* allocation() const { return allocation_.get(); }
  size_t byteOffset() const { return offset_; }

 private:
  Napi::Value GetDType(const Napi::CallbackInfo& info);
  Napi::Value GetLength(const Napi::CallbackInfo& info);
  Napi::Value GetByteLength(const Napi::CallbackInfo& info);
  Napi::Value GetByteOffset(const Napi::CallbackInfo& info);
  Napi::Value GetDevice(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  Napi::Value GetIsView(const Napi::CallbackInfo& info);
  // copyFrom(src, offsetElements), copyTo(dst, offsetElements)
  Napi::Value CopyFrom(const Napi::CallbackInfo& info);
  Napi::Value CopyTo(const Napi::CallbackInfo& info);
  // fill(value): a number, or a bigint for int64
  Napi::Value Fill(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);

  void checkUsable(Napi::Env env, const char* operation) const;
  struct HostSpan {
    ArrayView host;
    char* device;
  };
  HostSpan hostSpan(const Napi::CallbackInfo& info, const char* name);

  std::shared_ptr<DeviceAllocation> allocation_;
  size_t offset_ = 0;  // bytes from the allocation's start
  size_t length_ = 0;  // elements
  DType dtype_ = DType::kFloat32;
  bool owner_ = false;     // allocated it (not a view)
  bool detached_ = false;  // a view on which free() was called
};

// exports.gpu = { backends(), DeviceBuffer }
void registerExports(Napi::Env env, Napi::Object exports);

}  // namespace gpu
}  // namespace collectives
