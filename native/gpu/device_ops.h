// exports.gpu.ops: the training layer's elementwise operations (lib/ops/)
// and the codecs (lib/core/quantized.ts) on DeviceBuffers, run by the kernels of
// libcollectives_cuda (kernels_api.h). Each call checks its arguments (the
// backstop behind the TypeScript checks), launches one kernel on the legacy
// default stream of the buffers' device and waits for it: synchronous, like
// the host versions.
#pragma once

#include <napi.h>

namespace collectives {
namespace gpu {

// Adds `ops` to the addon's `gpu` object.
void registerDeviceOps(Napi::Env env, Napi::Object gpu);

}  // namespace gpu
}  // namespace collectives
