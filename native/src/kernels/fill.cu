#include "fill.cuh"

#include "../cudaCheck.h"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

__global__ void FillFloatKernel(float* data, size_t count, float value) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    data[i] = value;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchFillFloat(float* data, size_t count, float value, cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  const int threads = 256;
  const size_t wanted = (count + threads - 1) / threads;
  const unsigned blocks = static_cast<unsigned>(wanted < 65535 ? wanted : 65535);
  FillFloatKernel<<<blocks, threads, 0, stream>>>(data, count, value);
  CSKV_CUDA_TRY(cudaGetLastError(), "fillFloat kernel launch");
  return Status::Ok();
}

}  // namespace cskv
