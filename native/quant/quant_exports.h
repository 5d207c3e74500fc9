// The codecs as synchronous module functions (pure compute on the calling
// thread): quantize, dequantize, quantizedSize, and the default block size.
#pragma once

#include <napi.h>

namespace collectives {
namespace quant {

void registerExports(Napi::Env env, Napi::Object exports);

}  // namespace quant
}  // namespace collectives
