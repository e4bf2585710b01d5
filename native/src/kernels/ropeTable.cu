#include "ropeTable.cuh"

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

__global__ void RopeTableKernel(const double* invFreq, double attentionFactor, float2* table, int64_t positions, int half) {
  const size_t total = static_cast<size_t>(positions) * half;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const double angle = static_cast<double>(i / half) * invFreq[i % half];
    double s, c;
    sincos(angle, &s, &c);
    table[i] = make_float2(static_cast<float>(c * attentionFactor), static_cast<float>(s * attentionFactor));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchRopeTable(const double* invFreq, double attentionFactor, float* table, int64_t positions, int half, cudaStream_t stream) {
  if (positions <= 0 || half <= 0) return Status::Ok();
  constexpr int kThreads = 256;
  RopeTableKernel<<<GridFor(static_cast<size_t>(positions) * half, kThreads), kThreads, 0, stream>>>(invFreq, attentionFactor,
                                                                                                       reinterpret_cast<float2*>(table), positions, half);
  CSKV_CUDA_TRY(cudaGetLastError(), "ropeTable kernel launch");
  return Status::Ok();
}

}  // namespace cskv
