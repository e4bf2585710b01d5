#include "swiglu.cuh"

#include <cuda_bf16.h>

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

template <typename T>
__global__ void SwigluKernel(const T* gate, const T* up, T* out, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = LoadFloat(gate, i);
    // expf(-g) overflows to inf for g < -88: g / inf = -0, which is silu's limit.
    StoreFloat(out, i, g / (1.f + expf(-g)) * LoadFloat(up, i));
  }
}

// The engine's form: gate and up side by side in one f32 row [gate | up] (one fused GEMM), bf16 out.
__global__ void SwigluRowsKernel(const float* gateUp, __nv_bfloat16* out, size_t rows, size_t inter) {
  const size_t count = rows * inter;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = i / inter, c = i % inter;
    const float g = gateUp[r * 2 * inter + c];
    out[i] = __float2bfloat16_rn(g / (1.f + expf(-g)) * gateUp[r * 2 * inter + inter + c]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

constexpr int kThreads = 256;

Status LaunchSwiglu(DType type, const void* gate, const void* up, void* out, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  if (type == DType::kF32) {
    SwigluKernel<float><<<GridFor(count, kThreads), kThreads, 0, stream>>>(static_cast<const float*>(gate), static_cast<const float*>(up), static_cast<float*>(out), count);
  } else {
    SwigluKernel<__nv_bfloat16><<<GridFor(count, kThreads), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(gate), static_cast<const __nv_bfloat16*>(up), static_cast<__nv_bfloat16*>(out), count);
  }
  CSKV_CUDA_TRY(cudaGetLastError(), "swiglu kernel launch");
  return Status::Ok();
}

Status LaunchSwigluRows(const float* gateUp, uint16_t* out, size_t rows, size_t inter, cudaStream_t stream) {
  if (rows * inter == 0) return Status::Ok();
  SwigluRowsKernel<<<GridFor(rows * inter, kThreads), kThreads, 0, stream>>>(gateUp, reinterpret_cast<__nv_bfloat16*>(out), rows, inter);
  CSKV_CUDA_TRY(cudaGetLastError(), "swiglu (fused rows) kernel launch");
  return Status::Ok();
}

}  // namespace cskv
