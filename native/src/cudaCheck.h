// Turns a CUDA runtime status into a Status naming the call and the operation (kernel) it belonged to.
// Out-of-memory gets its own code so the runtime can act on it (shrink the context) instead of failing.
#pragma once

#ifdef CSKV_WITH_CUDA

#include <cuda_runtime_api.h>

#include <string>

#include "status.h"

namespace cskv {

inline Status CudaStatus(cudaError_t error, const char* call, const char* operation) {
  if (error == cudaSuccess) return Status::Ok();
  std::string message = std::string(operation) + ": " + call + " failed: " + cudaGetErrorName(error) + " (" +
                        std::to_string(static_cast<int>(error)) + "): " + cudaGetErrorString(error);
  return Status::Error(error == cudaErrorMemoryAllocation ? "OUT_OF_MEMORY" : "CUDA", message);
}

}  // namespace cskv

// Returns from the enclosing function (which returns Status) when `call` fails.
#define CSKV_CUDA_TRY(call, operation)                                         \
  do {                                                                         \
    const ::cskv::Status cskv_status_ = ::cskv::CudaStatus((call), #call, (operation)); \
    if (!cskv_status_.ok()) return cskv_status_;                               \
  } while (0)

#endif  // CSKV_WITH_CUDA
