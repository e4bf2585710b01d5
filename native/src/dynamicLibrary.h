// A shared library opened at run time with dlopen. The CUDA driver (libcuda.so.1) and cuBLASLt are never linked
// at build time, so the addon loads on machines without them and can say exactly which file or symbol is missing.
#pragma once

#include <string>
#include <vector>

namespace cskv {

class DynamicLibrary {
 public:
  // Tries each candidate (a soname or a path) in order; the first that opens wins. The handle is kept for the
  // life of the process (CUDA libraries do not support being unloaded while contexts exist).
  static DynamicLibrary Open(const std::vector<std::string>& candidates);

  bool loaded() const { return handle_ != nullptr; }
  // The candidate that opened, or all that were tried.
  const std::string& path() const { return path_; }
  // Why none opened (every candidate's dlerror), empty when loaded.
  const std::string& error() const { return error_; }

  // The symbol's address or nullptr; `missing` collects the names that were not found.
  void* Symbol(const char* name, std::vector<std::string>& missing) const;

 private:
  void* handle_ = nullptr;
  std::string path_;
  std::string error_;
};

// Candidates for a CUDA library: its soname (the loader's search path), then the toolkit folders named by
// CUDA_HOME / CUDA_PATH and /usr/local/cuda, which are often not on the loader path.
std::vector<std::string> CudaLibraryCandidates(const std::string& soname);

}  // namespace cskv
