#include "gpu/kernels_api.h"

#include <dlfcn.h>

#include "gpu/lazy_library.h"

namespace collectives {
namespace gpu {
namespace {

// The folder of the file this code was loaded from (the addon), found from
// the address of one of its functions: the build and the prebuild put
// libcollectives_cuda.so beside the addon.
std::string addonFolder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&kernels), &info) == 0 || !info.dli_fname) return "";
  std::string file = info.dli_fname;
  size_t slash = file.find_last_of('/');
  return slash == std::string::npos ? "" : file.substr(0, slash);
}

LibrarySearch kernelsSearch() {
  LibrarySearch s;
  s.names = {"libcollectives_cuda.so"};
  s.overrideEnv = "COLLECTIVES_CUDA_KERNELS";
  std::string own = addonFolder();
  if (!own.empty()) s.firstDirs = {own};
  return s;
}

bool bindKernels(const DynamicLibrary& lib, KernelsApi& api, KernelsStatus& s) {
  // The version first: a library of another API version may have other
  // signatures under the same names.
  COLLECTIVES_BIND(lib, api, collectives_cuda_api_version);
  s.version = api.collectives_cuda_api_version();
  if (s.version != kKernelsApiVersion) {
    s.reason = "libcollectives_cuda.so at " + s.library + " has API version " +
               std::to_string(s.version) + "; this addon needs version " +
               std::to_string(kKernelsApiVersion) + " (rebuild both from the same source)";
    return false;
  }
  COLLECTIVES_BIND(lib, api, collectives_cuda_error_string);
  COLLECTIVES_BIND(lib, api, collectives_cuda_quantize);
  COLLECTIVES_BIND(lib, api, collectives_cuda_dequantize);
  COLLECTIVES_BIND(lib, api, collectives_cuda_dequantize_accumulate);
  COLLECTIVES_BIND(lib, api, collectives_cuda_adamw);
  COLLECTIVES_BIND(lib, api, collectives_cuda_nesterov);
  COLLECTIVES_BIND(lib, api, collectives_cuda_axpy);
  COLLECTIVES_BIND(lib, api, collectives_cuda_scale);
  COLLECTIVES_BIND(lib, api, collectives_cuda_divide);
  COLLECTIVES_BIND(lib, api, collectives_cuda_cast);
  return true;
}

LazyLibrary<KernelsStatus, KernelsApi>::Spec kernelsSpec() {
  LibrarySearch search = kernelsSearch();
  const std::string fix = "it is built beside the addon when nvcc is found (or set " +
                          search.overrideEnv + ")";
  return {std::move(search), "libcollectives_cuda.so (the CUDA kernels)", fix, "", bindKernels};
}

}  // namespace

std::string KernelsApi::describe(const char* what, int code) const {
  const char* message = collectives_cuda_error_string ? collectives_cuda_error_string(code) : nullptr;
  return std::string(what) + " failed (error " + std::to_string(code) + ": " +
         (message ? message : "unknown") + ")";
}

const KernelsStatus& kernels() {
  static LazyLibrary<KernelsStatus, KernelsApi> library(kernelsSpec());
  return library.status();
}

}  // namespace gpu
}  // namespace collectives
