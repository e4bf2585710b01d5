#include "cudaDriver.h"

namespace cskv {

std::string CudaDriver::Describe(int result) const {
  const char* name = nullptr;
  const char* text = nullptr;
  if (cuGetErrorName != nullptr) cuGetErrorName(result, &name);
  if (cuGetErrorString != nullptr) cuGetErrorString(result, &text);
  std::string described = name != nullptr ? name : "CUresult";
  described += " (" + std::to_string(result) + ")";
  if (text != nullptr) described += std::string(": ") + text;
  return described;
}

CudaDriver LoadCudaDriver(const std::string& overridePath) {
  CudaDriver driver;
  // Only the soname: libcuda belongs to the installed kernel driver, never to a toolkit folder.
  driver.library = DynamicLibrary::Open({overridePath.empty() ? std::string("libcuda.so.1") : overridePath});
  if (!driver.library.loaded()) return driver;
  auto& missing = driver.missingSymbols;
  driver.cuInit = reinterpret_cast<decltype(driver.cuInit)>(driver.library.Symbol("cuInit", missing));
  driver.cuDriverGetVersion = reinterpret_cast<decltype(driver.cuDriverGetVersion)>(driver.library.Symbol("cuDriverGetVersion", missing));
  driver.cuDeviceGetCount = reinterpret_cast<decltype(driver.cuDeviceGetCount)>(driver.library.Symbol("cuDeviceGetCount", missing));
  driver.cuDeviceGet = reinterpret_cast<decltype(driver.cuDeviceGet)>(driver.library.Symbol("cuDeviceGet", missing));
  driver.cuDevicePrimaryCtxGetState =
      reinterpret_cast<decltype(driver.cuDevicePrimaryCtxGetState)>(driver.library.Symbol("cuDevicePrimaryCtxGetState", missing));
  driver.cuGetErrorName = reinterpret_cast<decltype(driver.cuGetErrorName)>(driver.library.Symbol("cuGetErrorName", missing));
  driver.cuGetErrorString = reinterpret_cast<decltype(driver.cuGetErrorString)>(driver.library.Symbol("cuGetErrorString", missing));
  return driver;
}

}  // namespace cskv
