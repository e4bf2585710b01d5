#include "bias.cuh"

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

__global__ void AddBiasKernel(float* rows, const float* bias, size_t count, size_t cols, size_t stride) {
  const size_t total = count * cols;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = i / cols, c = i % cols;
    rows[r * stride + c] += bias[c];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchAddBias(float* rows, const float* bias, size_t count, size_t cols, size_t stride, cudaStream_t stream) {
  if (count * cols == 0) return Status::Ok();
  if (stride < cols) return Status::Error("BAD_ARGUMENT", "addBias: stride is shorter than a row");
  constexpr int kThreads = 256;
  AddBiasKernel<<<GridFor(count * cols, kThreads), kThreads, 0, stream>>>(rows, bias, count, cols, stride);
  CSKV_CUDA_TRY(cudaGetLastError(), "addBias kernel launch");
  return Status::Ok();
}

}  // namespace cskv
