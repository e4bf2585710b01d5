#include "dynamicLibrary.h"

#include <dlfcn.h>

#include <cstdlib>

namespace cskv {

DynamicLibrary DynamicLibrary::Open(const std::vector<std::string>& candidates) {
  DynamicLibrary library;
  for (const std::string& candidate : candidates) {
    dlerror();
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) {
      library.handle_ = handle;
      library.path_ = candidate;
      library.error_.clear();
      return library;
    }
    const char* why = dlerror();
    if (!library.error_.empty()) library.error_ += "; ";
    library.error_ += why != nullptr ? why : (candidate + ": dlopen failed");
    if (!library.path_.empty()) library.path_ += ", ";
    library.path_ += candidate;
  }
  return library;
}

void* DynamicLibrary::Symbol(const char* name, std::vector<std::string>& missing) const {
  if (handle_ == nullptr) return nullptr;
  dlerror();
  void* address = dlsym(handle_, name);
  if (address == nullptr) missing.emplace_back(name);
  return address;
}

std::vector<std::string> CudaLibraryCandidates(const std::string& soname) {
  std::vector<std::string> candidates{soname};
  for (const char* variable : {"CUDA_HOME", "CUDA_PATH"}) {
    const char* home = std::getenv(variable);
    if (home != nullptr && *home != '\0') candidates.push_back(std::string(home) + "/lib64/" + soname);
  }
  candidates.push_back("/usr/local/cuda/lib64/" + soname);
  candidates.push_back("/usr/local/cuda/targets/x86_64-linux/lib/" + soname);
  return candidates;
}

}  // namespace cskv
