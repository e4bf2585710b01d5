#include "probe.h"

#include <cstdlib>
#include <exception>
#include <mutex>

#include "buildInfo.h"
#include "cublasLt.h"
#include "cudaDriver.h"

#ifdef CSKV_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cskv {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ", ") + item;
  return joined;
}

ProbedLibrary Describe(const DynamicLibrary& library, const std::vector<std::string>& missing) {
  ProbedLibrary described;
  described.loaded = library.loaded();
  described.path = library.path();
  described.error = library.error();
  described.missingSymbols = missing;
  return described;
}

// The driver part: libcuda.so.1, its entry points, cuInit, version and device count. Returns false (with
// result.reason set) when CUDA cannot work on this machine whatever the build.
bool ProbeDriver(const CudaDriver& driver, ProbeResult& result) {
  result.driver = Describe(driver.library, driver.missingSymbols);
  if (!driver.library.loaded()) {
    result.reason = "the NVIDIA driver library is not installed or not on the loader path (" + driver.library.error() + ")";
    return false;
  }
  if (!driver.missingSymbols.empty()) {
    result.reason = driver.library.path() + " is not a usable CUDA driver library: it lacks " + Join(driver.missingSymbols);
    return false;
  }
  int version = 0;
  if (driver.cuDriverGetVersion(&version) == kCudaDriverSuccess) {
    result.driverCudaVersion = version;
    result.driver.version = CudaVersionText(version);
  }
  const int init = driver.cuInit(0);
  if (init == kCudaDriverErrorNoDevice) {
    result.reason = "no NVIDIA GPU found (cuInit: " + driver.Describe(init) + ")";
    return false;
  }
  if (init != kCudaDriverSuccess) {
    result.reason = "the NVIDIA driver failed to initialise (cuInit: " + driver.Describe(init) + ")";
    return false;
  }
  int count = 0;
  const int counted = driver.cuDeviceGetCount(&count);
  if (counted != kCudaDriverSuccess) {
    result.reason = "cuDeviceGetCount: " + driver.Describe(counted);
    return false;
  }
  if (count == 0) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    result.reason = visible != nullptr ? "no NVIDIA GPU visible (CUDA_VISIBLE_DEVICES=\"" + std::string(visible) + "\")" : "no NVIDIA GPU found";
    return false;
  }
  // Same major version is enough: CUDA's minor-version compatibility runs a 13.x runtime on any 13.0 driver.
  if (kBuiltWithCuda && version > 0 && version / 1000 < kCudaBuildVersion / 1000) {
    result.reason = "the NVIDIA driver supports CUDA " + CudaVersionText(version) + " but this addon was built with CUDA " +
                    CudaVersionText(kCudaBuildVersion) + ": update the driver";
    return false;
  }
  return true;
}

#ifdef CSKV_WITH_CUDA
// Whether the device's primary context already exists (an engine in this process is using the GPU).
bool PrimaryContextActive(const CudaDriver& driver, int ordinal) {
  int device = 0;
  unsigned int flags = 0;
  int active = 0;
  if (driver.cuDeviceGet(&device, ordinal) != kCudaDriverSuccess) return true;  // unknown: leave it alone
  if (driver.cuDevicePrimaryCtxGetState(device, &flags, &active) != kCudaDriverSuccess) return true;
  return active != 0;
}

// The runtime part: what the (statically linked) CUDA runtime sees of each GPU.
bool ProbeDevices(const CudaDriver& driver, ProbeResult& result) {
  cudaRuntimeGetVersion(&result.runtimeCudaVersion);
  int count = 0;
  const cudaError_t counted = cudaGetDeviceCount(&count);
  if (counted != cudaSuccess) {
    result.reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(counted) + " (" + std::to_string(counted) +
                    "): " + cudaGetErrorString(counted);
    return false;
  }
  for (int index = 0; index < count; index++) {
    ProbedDevice device;
    device.index = index;
    cudaDeviceProp properties{};
    cudaError_t error = cudaGetDeviceProperties(&properties, index);
    if (error == cudaSuccess) {
      device.name = properties.name;
      device.totalBytes = properties.totalGlobalMem;
      device.computeMajor = properties.major;
      device.computeMinor = properties.minor;
      device.multiprocessors = properties.multiProcessorCount;
      size_t freeBytes = 0, totalBytes = 0;
      // cudaMemGetInfo needs the device's context. A context costs hundreds of MB of GPU memory, so one created
      // only for this question is destroyed again: a sidecar that ends up on onnx must not hold the GPU.
      const bool keepContext = PrimaryContextActive(driver, index);
      error = cudaSetDevice(index);
      if (error == cudaSuccess) error = cudaMemGetInfo(&freeBytes, &totalBytes);
      if (error == cudaSuccess) device.freeBytes = freeBytes;
      if (!keepContext) {
        const cudaError_t reset = cudaDeviceReset();
        if (error == cudaSuccess) error = reset;
      }
    }
    if (error != cudaSuccess) {
      device.problem = std::string("cannot query device ") + std::to_string(index) + ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error);
    } else if (device.computeMajor * 10 + device.computeMinor < kMinComputeCapability) {
      device.problem = device.name + " has compute capability " + std::to_string(device.computeMajor) + "." +
                       std::to_string(device.computeMinor) + "; the CUDA backend needs 8.0 or newer (bf16)";
    } else {
      device.supported = true;
    }
    result.devices.push_back(device);
  }
  for (const ProbedDevice& device : result.devices) {
    if (device.supported) return true;
  }
  result.reason = result.devices.empty() ? "no NVIDIA GPU found (cudaGetDeviceCount returned 0)" : result.devices.front().problem;
  return false;
}
#endif

void ProbeCublasLt(const ProbeOptions& options, ProbeResult& result) {
  const CublasLt lt = LoadCublasLt(options.cublasLt);
  result.cublasLt = Describe(lt.library, lt.missingSymbols);
  if (lt.cublasLtGetVersion != nullptr) result.cublasLt.version = std::to_string(lt.cublasLtGetVersion());
}

std::string CublasLtProblem(const ProbeResult& result) {
  if (!result.cublasLt.loaded) return "cuBLASLt (" + CublasLtSoname() + ") not found: " + result.cublasLt.error;
  if (!result.cublasLt.missingSymbols.empty()) return result.cublasLt.path + " lacks " + Join(result.cublasLt.missingSymbols);
  return "";
}

}  // namespace

std::string CudaVersionText(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

ProbeResult RunProbe(const ProbeOptions& options) {
  // One probe at a time: a probe may create and destroy a device's context, which must not happen under another.
  static std::mutex probing;
  const std::lock_guard<std::mutex> lock(probing);
  ProbeResult result;
  try {
    // The libraries are described even when the answer is already known, so a user sees everything at once.
    const CudaDriver driver = LoadCudaDriver(options.libcuda);
    const bool driverWorks = ProbeDriver(driver, result);
    ProbeCublasLt(options, result);
    if (!kBuiltWithCuda) {
      const std::string why = "this addon was built without CUDA (nvcc was not found when it was compiled, or CSKV_NATIVE_CUDA=off)";
      result.reason = driverWorks ? why : why + "; also, " + result.reason;
      return result;
    }
#ifdef CSKV_WITH_CUDA
    if (!driverWorks || !ProbeDevices(driver, result)) return result;
#endif
    const std::string cublasProblem = CublasLtProblem(result);
    if (!cublasProblem.empty()) {
      result.reason = cublasProblem;
      return result;
    }
    result.available = true;
  } catch (const std::exception& error) {
    result.available = false;
    result.reason = std::string("probe failed: ") + error.what();
  }
  return result;
}

}  // namespace cskv
