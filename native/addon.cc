// Module registration only.
#include <napi.h>

#include "addon_data.h"
#include "communicator.h"
#include "dtype.h"
#include "ops/ops_exports.h"
#include "gpu/device_buffer.h"
#include "gpu/device_ops.h"
#include "mpi/mpi_exports.h"
#include "quant/quant_exports.h"

// CMake passes the version from Gloo's package config; node-gyp has none.
#ifndef COLLECTIVES_GLOO_VERSION
#define COLLECTIVES_GLOO_VERSION "unknown"
#endif

namespace collectives {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  env.AddCleanupHook([data] { data->teardown(); });
  data->communicatorConstructor = Napi::Persistent(Communicator::Define(env));
  exports.Set("NativeCommunicator", data->communicatorConstructor.Value());
  exports.Set("connect", Napi::Function::New(env, &Communicator::Connect, "connect"));
  Napi::Object versions = Napi::Object::New(env);
  versions.Set("gloo", Napi::String::New(env, COLLECTIVES_GLOO_VERSION));
  versions.Set("napi", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("versions", versions);
  quant::registerExports(env, exports);
  ops::registerExports(env, exports);
  gpu::registerExports(env, exports);
  gpu::registerDeviceOps(env, exports.Get("gpu").As<Napi::Object>());
  mpi::registerExports(env, exports);
  return exports;
}

}  // namespace
}  // namespace collectives

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return collectives::Init(env, exports);
}

NODE_API_MODULE(collectives, InitModule)
