// A shared library opened at run time, so that one built addon loads on a
// machine without CUDA or NCCL. open() searches the places these libraries
// are usually installed and records every path it tried and why it failed;
// symbol() says which symbol was missing in which library.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace collectives {
namespace gpu {

// Where to look for one library.
struct LibrarySearch {
  std::vector<std::string> names;        // sonames, preferred first
  std::string overrideEnv;               // e.g. COLLECTIVES_NCCL_LIBRARY: an explicit path
  std::vector<std::string> wheelDirs;    // inside a Python site-packages, e.g. nvidia/nccl/lib
  std::vector<std::string> firstDirs;    // searched before all the others (the addon's own folder)
  // Open with RTLD_GLOBAL: a library that dlopens plugins which resolve its
  // own symbols (Open MPI's components) needs them visible to the plugins.
  bool global = false;
};

// One place tried: the path (or bare soname) and why it did not load.
struct LoadAttempt {
  std::string path;
  std::string error;
};

class DynamicLibrary {
 public:
  ~DynamicLibrary();
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // The first candidate that loads, or nullptr; `tried` receives every
  // candidate before it. An explicit path in search.overrideEnv is the only
  // candidate when it is set.
  static std::unique_ptr<DynamicLibrary> open(const LibrarySearch& search,
                                              std::vector<LoadAttempt>* tried);

  // The address of `name`; throws MissingSymbol naming the library.
  void* symbol(const char* name) const;

  // The file that was opened (as dlinfo reports it when the bare soname
  // was used).
  const std::string& path() const { return path_; }

 private:
  DynamicLibrary(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  void* handle_;
  std::string path_;
};

class MissingSymbol : public std::runtime_error {
 public:
  MissingSymbol(const std::string& symbol, const std::string& library)
      : std::runtime_error("symbol " + symbol + " not found in " + library),
        symbol_(symbol) {}
  const std::string& symbol() const { return symbol_; }

 private:
  std::string symbol_;
};

// The folders searched for `search`, in order, without the bare soname step
// (exposed for the reason strings).
std::vector<std::string> searchFolders(const LibrarySearch& search);

// "tried: a, b, c and 4 more" from the attempts, for a reason string.
std::string summarizeAttempts(const std::vector<LoadAttempt>& tried, size_t max = 6);

// Why `search` loaded nothing: when its override variable is set, that the
// path it names did not load (with the loader's error); otherwise `notFound`.
std::string notLoadedReason(const LibrarySearch& search, const std::vector<LoadAttempt>& tried,
                            const std::string& notFound);

// Points `fn` at the symbol `name` of `lib`; throws MissingSymbol.
template <typename F>
void bindSymbol(const DynamicLibrary& lib, F*& fn, const char* name) {
  fn = reinterpret_cast<F*>(lib.symbol(name));
}

// Binds the member of `api` named like the C function.
#define COLLECTIVES_BIND(lib, api, name) ::collectives::gpu::bindSymbol(lib, (api).name, #name)

}  // namespace gpu
}  // namespace collectives
