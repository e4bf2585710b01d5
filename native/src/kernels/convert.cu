#include "convert.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

__global__ void F32ToBf16Kernel(const float* in, __nv_bfloat16* out, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2bfloat16_rn(in[i]);
  }
}

__global__ void Bf16ToF32Kernel(const __nv_bfloat16* in, float* out, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = __bfloat162float(in[i]);
  }
}

__global__ void F16ToBf16Kernel(const __half* in, __nv_bfloat16* out, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    // Every f16 value is exact in f32, so this rounds once.
    out[i] = __float2bfloat16_rn(__half2float(in[i]));
  }
}

__global__ void F16ToF32Kernel(const __half* in, float* out, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = __half2float(in[i]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

constexpr int kThreads = 256;

Status LaunchF32ToBf16(const float* in, uint16_t* out, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  F32ToBf16Kernel<<<GridFor(count, kThreads), kThreads, 0, stream>>>(in, reinterpret_cast<__nv_bfloat16*>(out), count);
  CSKV_CUDA_TRY(cudaGetLastError(), "f32ToBf16 kernel launch");
  return Status::Ok();
}

Status LaunchBf16ToF32(const uint16_t* in, float* out, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  Bf16ToF32Kernel<<<GridFor(count, kThreads), kThreads, 0, stream>>>(reinterpret_cast<const __nv_bfloat16*>(in), out, count);
  CSKV_CUDA_TRY(cudaGetLastError(), "bf16ToF32 kernel launch");
  return Status::Ok();
}

Status LaunchF16ToBf16(const uint16_t* in, uint16_t* out, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  F16ToBf16Kernel<<<GridFor(count, kThreads), kThreads, 0, stream>>>(reinterpret_cast<const __half*>(in), reinterpret_cast<__nv_bfloat16*>(out), count);
  CSKV_CUDA_TRY(cudaGetLastError(), "f16ToBf16 kernel launch");
  return Status::Ok();
}

Status LaunchF16ToF32(const uint16_t* in, float* out, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  F16ToF32Kernel<<<GridFor(count, kThreads), kThreads, 0, stream>>>(reinterpret_cast<const __half*>(in), out, count);
  CSKV_CUDA_TRY(cudaGetLastError(), "f16ToF32 kernel launch");
  return Status::Ok();
}

}  // namespace cskv
