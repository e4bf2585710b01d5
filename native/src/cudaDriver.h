// The few CUDA driver API entry points the probe needs, resolved from libcuda.so.1 at run time. Declared here
// (with the driver's int-sized CUresult/CUdevice) rather than taken from cuda.h so the CPU-only build needs no
// CUDA headers at all.
#pragma once

#include <string>
#include <vector>

#include "dynamicLibrary.h"

namespace cskv {

struct CudaDriver {
  DynamicLibrary library;
  std::vector<std::string> missingSymbols;

  int (*cuInit)(unsigned int flags) = nullptr;
  int (*cuDriverGetVersion)(int* version) = nullptr;
  int (*cuDeviceGetCount)(int* count) = nullptr;
  int (*cuDeviceGet)(int* device, int ordinal) = nullptr;
  int (*cuDevicePrimaryCtxGetState)(int device, unsigned int* flags, int* active) = nullptr;
  int (*cuGetErrorName)(int result, const char** name) = nullptr;
  int (*cuGetErrorString)(int result, const char** text) = nullptr;

  bool usable() const { return library.loaded() && missingSymbols.empty(); }
  // "CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected".
  std::string Describe(int result) const;
};

constexpr int kCudaDriverSuccess = 0;
constexpr int kCudaDriverErrorNoDevice = 100;

// Opens `overridePath` when given, else libcuda.so.1 from the loader path.
CudaDriver LoadCudaDriver(const std::string& overridePath);

}  // namespace cskv
