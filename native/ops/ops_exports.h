// The host elementwise operations as module functions (exports.ops). The
// TypeScript layer (lib/ops/) validates first; these checks are the backstop.
#pragma once

#include <napi.h>

namespace collectives {
namespace ops {

void registerExports(Napi::Env env, Napi::Object exports);

}  // namespace ops
}  // namespace collectives
