// Whether this machine can run the CUDA backend, and if not exactly why: the driver library, its symbols and
// version, the GPUs and their compute capability, cuBLASLt. Plain C++ (no N-API) so it runs on a worker thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cskv {

struct ProbeOptions {
  // Paths to load instead of the default libcuda.so.1 / libcublasLt.so.<major>; empty for the defaults.
  std::string libcuda;
  std::string cublasLt;
};

struct ProbedDevice {
  int index = 0;
  std::string name;
  uint64_t totalBytes = 0;
  uint64_t freeBytes = 0;
  int computeMajor = 0;
  int computeMinor = 0;
  int multiprocessors = 0;
  // False when the GPU is too old for this build; `problem` says why.
  bool supported = false;
  std::string problem;
};

struct ProbedLibrary {
  bool loaded = false;
  std::string path;  // the file that opened, or those tried
  std::string error;
  std::vector<std::string> missingSymbols;
  std::string version;
};

struct ProbeResult {
  bool available = false;
  std::string reason;  // why not, when !available
  int driverCudaVersion = 0;  // cuDriverGetVersion, e.g. 13000; 0 when unknown
  int runtimeCudaVersion = 0;  // the (static) runtime's version; 0 in a CPU-only build
  std::vector<ProbedDevice> devices;
  ProbedLibrary driver;
  ProbedLibrary cublasLt;
};

// Never throws; every failure ends up in `reason`.
ProbeResult RunProbe(const ProbeOptions& options);

// "13.0" for 13000.
std::string CudaVersionText(int version);

}  // namespace cskv
