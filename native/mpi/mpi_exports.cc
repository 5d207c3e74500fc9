#include "mpi/mpi_exports.h"

#include "mpi/mpi_api.h"
#include "mpi/mpi_runtime.h"

namespace collectives {
namespace mpi {
namespace {

// status() -> { available, library?, version?, reason?, tried, libraryVersion?,
// initialized, threadLevel? }. Loads libmpi on the first call; never starts MPI.
Napi::Value Status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const MpiStatus& s = library();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", Napi::Boolean::New(env, s.available));
  if (!s.library.empty()) o.Set("library", Napi::String::New(env, s.library));
  if (!s.version.empty()) o.Set("version", Napi::String::New(env, s.version));
  if (!s.libraryVersion.empty()) o.Set("libraryVersion", Napi::String::New(env, s.libraryVersion));
  if (!s.available) o.Set("reason", Napi::String::New(env, s.reason));
  Napi::Array tried = Napi::Array::New(env, s.tried.size());
  for (size_t i = 0; i < s.tried.size(); ++i) {
    tried.Set(uint32_t(i), Napi::String::New(env, s.tried[i].path + ": " + s.tried[i].error));
  }
  o.Set("tried", tried);
  MpiRuntime& runtime = MpiRuntime::get();
  o.Set("initialized", Napi::Boolean::New(env, runtime.initialized()));
  if (runtime.initialized()) o.Set("threadLevel", Napi::String::New(env, runtime.threadLevel()));
  return o;
}

}  // namespace

void registerExports(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  m.Set("status", Napi::Function::New(env, &Status, "status"));
  exports.Set("mpi", m);
}

}  // namespace mpi
}  // namespace collectives
