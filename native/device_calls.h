// What the Communicator's device methods share (communicator_device.cc and
// communicator_device_quantized.cc): the DeviceBuffer argument check, the
// one-device rule, and the NCCL backend joined on first use.
#pragma once

#include <memory>

#include <napi.h>

#include "backend.h"
#include "gpu/device_buffer.h"
#include "nccl_state.h"
#include "rendezvous.h"

namespace collectives {

// JS thread: the DeviceBuffer `v`, or a TypeError naming `name`.
inline gpu::DeviceBuffer* deviceArg(Napi::Env env, const Napi::Value& v, const char* name) {
  return gpu::DeviceBuffer::from(env, v, name);
}

// JS thread: every device call of a communicator runs on the device of its first.
void checkDevice(Napi::Env env, NcclState& state, const gpu::DeviceBuffer& buffer,
                 const char* name);

// JS thread: a RangeError naming `name` when the two buffers' memory overlaps.
void checkDisjoint(Napi::Env env, const gpu::DeviceBuffer& in, const gpu::DeviceBuffer& out,
                   const char* name = "output");

// Queue thread: the NCCL backend, joined through the communicator's
// rendezvous on first use or after an abort, and inside the group the JS side
// opened, if any.
gpu::NcclBackend& ncclOn(NcclState& state, const Rendezvous& rendezvous, int rank, int size,
                         Millis timeout);

}  // namespace collectives
