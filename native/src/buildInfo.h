// What this binary was compiled with: whether nvcc built the kernels, for which CUDA version and GPUs.
#pragma once

#ifdef CSKV_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace cskv {

#ifdef CSKV_WITH_CUDA
constexpr bool kBuiltWithCuda = true;
constexpr int kCudaBuildVersion = CUDART_VERSION;  // e.g. 13000 for CUDA 13.0
constexpr const char* kCudaArchitectures = CSKV_CUDA_ARCHITECTURES;  // from binding.gyp
#else
constexpr bool kBuiltWithCuda = false;
constexpr int kCudaBuildVersion = 0;
constexpr const char* kCudaArchitectures = "";
#endif

// bf16 arithmetic and the tensor-core paths need compute capability 8.0 (Ampere) or newer; the binary carries
// sm_90 code for the H100 and compute_80 PTX that the driver compiles for any other GPU from 8.0 up.
constexpr int kMinComputeCapability = 80;

}  // namespace cskv
