#include "rmsNorm.cuh"

#include <cuda_bf16.h>

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

constexpr int kThreads = 256;

// One block per row: each thread sums the squares of a strided slice, warps reduce with shuffles, then warp 0
// reduces the per-warp sums.
template <typename TIn, typename TWeight, typename TOut>
__global__ void RmsNormKernel(const TIn* x, const TWeight* weight, TOut* out, size_t cols, float eps) {
  const size_t row = blockIdx.x;
  const TIn* in = x + row * cols;
  TOut* dst = out + row * cols;
  float sum = 0.f;
  for (size_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float v = LoadFloat(in, i);
    sum += v * v;
  }
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  __shared__ float warpSums[kThreads / 32];
  __shared__ float inverseRms;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warpSums[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    float total = lane < kThreads / 32 ? warpSums[lane] : 0.f;
    for (int offset = 16; offset > 0; offset >>= 1) total += __shfl_xor_sync(0xffffffffu, total, offset);
    if (lane == 0) inverseRms = rsqrtf(total / static_cast<float>(cols) + eps);
  }
  __syncthreads();
  for (size_t i = threadIdx.x; i < cols; i += blockDim.x) StoreFloat(dst, i, LoadFloat(in, i) * inverseRms * LoadFloat(weight, i));
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchRmsNorm(DType type, const void* x, const void* weight, void* out, size_t rows, size_t cols, float eps, cudaStream_t stream) {
  if (cols == 0) return Status::Error("BAD_ARGUMENT", "rmsNorm: zero columns");
  if (rows == 0) return Status::Ok();
  if (rows > 0x7fffffffu) return Status::Error("BAD_ARGUMENT", "rmsNorm: too many rows for one launch");
  const unsigned blocks = static_cast<unsigned>(rows);
  if (type == DType::kF32) {
    RmsNormKernel<float, float, float><<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(x), static_cast<const float*>(weight), static_cast<float*>(out), cols, eps);
  } else {
    RmsNormKernel<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16><<<blocks, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(weight),
                                                                  static_cast<__nv_bfloat16*>(out), cols, eps);
  }
  CSKV_CUDA_TRY(cudaGetLastError(), "rmsNorm kernel launch");
  return Status::Ok();
}

Status LaunchRmsNormToBf16(const float* x, const uint16_t* weight, uint16_t* out, size_t rows, size_t cols, float eps, cudaStream_t stream) {
  if (cols == 0) return Status::Error("BAD_ARGUMENT", "rmsNorm: zero columns");
  if (rows == 0) return Status::Ok();
  if (rows > 0x7fffffffu) return Status::Error("BAD_ARGUMENT", "rmsNorm: too many rows for one launch");
  RmsNormKernel<float, __nv_bfloat16, __nv_bfloat16><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      x, reinterpret_cast<const __nv_bfloat16*>(weight), reinterpret_cast<__nv_bfloat16*>(out), cols, eps);
  CSKV_CUDA_TRY(cudaGetLastError(), "rmsNorm (f32 -> bf16) kernel launch");
  return Status::Ok();
}

}  // namespace cskv
