// Loads and stores that convert between a kernel's storage type and the float it computes in.
#pragma once

#include <cuda_bf16.h>

namespace cskv {

__device__ __forceinline__ float LoadFloat(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float LoadFloat(const __nv_bfloat16* p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void StoreFloat(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void StoreFloat(__nv_bfloat16* p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// Grid size for a grid-stride loop over `count` elements.
inline unsigned GridFor(size_t count, int threads) {
  const size_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 ? (blocks == 0 ? 1 : blocks) : 65535);
}

}  // namespace cskv
