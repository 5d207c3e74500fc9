// The MPI engine's exports: `mpi.status()`, what backends() reports for MPI.
#pragma once

#include <napi.h>

namespace collectives {
namespace mpi {

void registerExports(Napi::Env env, Napi::Object exports);

}  // namespace mpi
}  // namespace collectives
