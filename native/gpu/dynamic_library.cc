#include "gpu/dynamic_library.h"

#include <dlfcn.h>
#include <glob.h>
#include <link.h>
#include <sys/stat.h>

#include <cstdlib>
#include <set>
#include <stdexcept>

namespace collectives {
namespace gpu {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::vector<std::string> splitPath(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    if (end > start) out.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

void globInto(const std::string& pattern, std::vector<std::string>* out) {
  glob_t g{};
  if (glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out->push_back(g.gl_pathv[i]);
  }
  globfree(&g);
}

// Python site-packages folders where NVIDIA's pip wheels put their libraries.
std::vector<std::string> pythonSiteFolders() {
  std::vector<std::string> out;
  for (const auto& dir : splitPath(env("COLLECTIVES_PYTHON_SITE"))) out.push_back(dir);
  std::string venv = env("VIRTUAL_ENV");
  if (!venv.empty()) globInto(venv + "/lib/python3*/site-packages", &out);
  std::string conda = env("CONDA_PREFIX");
  if (!conda.empty()) globInto(conda + "/lib/python3*/site-packages", &out);
  std::string home = env("HOME");
  if (!home.empty()) globInto(home + "/.local/lib/python3*/site-packages", &out);
  globInto("/usr/local/lib/python3*/dist-packages", &out);
  globInto("/usr/local/lib/python3*/site-packages", &out);
  globInto("/usr/lib/python3*/dist-packages", &out);
  globInto("/usr/lib/python3/dist-packages", &out);
  return out;
}

bool isFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

std::string lastDlError() {
  const char* e = dlerror();
  return e ? std::string(e) : std::string("unknown dlopen error");
}

}  // namespace

std::vector<std::string> searchFolders(const LibrarySearch& search) {
  std::vector<std::string> dirs = search.firstDirs;
  for (const auto& d : splitPath(env("LD_LIBRARY_PATH"))) dirs.push_back(d);
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    std::string root = env(var);
    if (!root.empty()) dirs.push_back(root + "/lib64");
  }
  dirs.push_back("/usr/local/cuda/lib64");
  for (const char* d : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                        "/usr/lib", "/usr/local/lib"}) {
    dirs.push_back(d);
  }
  for (const auto& site : pythonSiteFolders()) {
    for (const auto& sub : search.wheelDirs) dirs.push_back(site + "/" + sub);
  }
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (auto& d : dirs) {
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    if (seen.insert(d).second) unique.push_back(d);
  }
  return unique;
}

DynamicLibrary::~DynamicLibrary() {
  // The library stays mapped: CUDA and NCCL register process-wide state and
  // their own exit handlers, and unloading them under those is unsafe.
}

std::unique_ptr<DynamicLibrary> DynamicLibrary::open(const LibrarySearch& search,
                                                     std::vector<LoadAttempt>* tried) {
  const int mode = RTLD_NOW | (search.global ? RTLD_GLOBAL : RTLD_LOCAL);
  auto attempt = [&](const std::string& path, bool mustExist) -> std::unique_ptr<DynamicLibrary> {
    if (mustExist && !isFile(path)) {
      tried->push_back({path, "no such file"});
      return nullptr;
    }
    dlerror();
    void* handle = dlopen(path.c_str(), mode);
    if (!handle) {
      tried->push_back({path, lastDlError()});
      return nullptr;
    }
    std::string resolved = path;
    struct link_map* map = nullptr;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && *map->l_name) {
      resolved = map->l_name;
    }
    return std::unique_ptr<DynamicLibrary>(new DynamicLibrary(handle, resolved));
  };

  std::string explicitPath = search.overrideEnv.empty() ? "" : env(search.overrideEnv.c_str());
  if (!explicitPath.empty()) {
    // An explicit choice is not second-guessed with a different library. A
    // bare file name is left to the dynamic loader's search.
    return attempt(explicitPath, explicitPath.find('/') != std::string::npos);
  }
  for (const auto& dir : searchFolders(search)) {
    for (const auto& name : search.names) {
      if (auto lib = attempt(dir + "/" + name, true)) return lib;
    }
  }
  // Last, the dynamic loader's own search (its cache, RUNPATH of the process).
  for (const auto& name : search.names) {
    if (auto lib = attempt(name, false)) return lib;
  }
  return nullptr;
}

void* DynamicLibrary::symbol(const char* name) const {
  dlerror();
  void* address = dlsym(handle_, name);
  if (!address) throw MissingSymbol(name, path_);
  return address;
}

std::string summarizeAttempts(const std::vector<LoadAttempt>& tried, size_t max) {
  // Files that exist but failed to load say the most; list them in full.
  std::string out;
  std::vector<std::string> missingDirs;
  std::set<std::string> seenDirs;
  std::vector<std::string> failures;
  bool loaderSearched = false;
  for (const auto& a : tried) {
    if (a.path.find('/') == std::string::npos &&
        a.error.find("cannot open shared object file") != std::string::npos) {
      loaderSearched = true;
    } else if (a.error == "no such file") {
      std::string dir = a.path.substr(0, a.path.find_last_of('/'));
      if (seenDirs.insert(dir).second) missingDirs.push_back(dir);
    } else {
      failures.push_back(a.path + " (" + a.error + ")");
    }
  }
  std::string dirs;
  for (size_t i = 0; i < missingDirs.size() && i < max; ++i) {
    dirs += (i ? ", " : "") + missingDirs[i];
  }
  if (missingDirs.size() > max) {
    dirs += " and " + std::to_string(missingDirs.size() - max) + " more folders";
  }
  if (!dirs.empty()) out += "searched " + dirs;
  if (loaderSearched) out += (out.empty() ? "searched " : ", then ") + std::string("the dynamic loader's default paths");
  for (const auto& f : failures) out += (out.empty() ? "" : "; ") + f;
  return out;
}

std::string notLoadedReason(const LibrarySearch& search, const std::vector<LoadAttempt>& tried,
                            const std::string& notFound) {
  const char* set = search.overrideEnv.empty() ? nullptr : std::getenv(search.overrideEnv.c_str());
  if (!set || !*set) return notFound;
  return search.overrideEnv + "=" + set + " did not load: " +
         (tried.empty() ? std::string("unknown error") : tried.back().error);
}

}  // namespace gpu
}  // namespace collectives
