#include "rope.cuh"

#include <cuda_bf16.h>

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

// One block per (token, head), one thread per rotated pair. The angle is formed and reduced to [-pi, pi] in
// double: at position 131072 an f32 product p * f would already be off by ~0.01 rad. The fused attention kernels
// will read precomputed tables instead; this one is the reference-grade version.
template <typename T>
__global__ void RopeKernel(const T* x, T* out, const int32_t* positions, const double* invFreq, float attentionFactor, size_t heads, size_t headDim) {
  const size_t token = blockIdx.x / heads;
  const size_t base = static_cast<size_t>(blockIdx.x) * headDim;
  const size_t half = headDim / 2;
  const double position = static_cast<double>(positions[token]);
  for (size_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double angle = position * invFreq[i];
    const double twoPi = 6.283185307179586476925286766559;
    const float reduced = static_cast<float>(angle - twoPi * rint(angle / twoPi));
    float s, c;
    sincosf(reduced, &s, &c);
    c *= attentionFactor;
    s *= attentionFactor;
    const float a = LoadFloat(x, base + i);
    const float b = LoadFloat(x, base + i + half);
    StoreFloat(out, base + i, a * c - b * s);
    StoreFloat(out, base + i + half, b * c + a * s);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchRope(DType type, const void* x, void* out, const int32_t* positions, const double* invFreq, float attentionFactor,
                  size_t tokens, size_t heads, size_t headDim, cudaStream_t stream) {
  if (headDim == 0 || headDim % 2 != 0) return Status::Error("BAD_ARGUMENT", "rope: headDim must be even and positive");
  if (tokens == 0 || heads == 0) return Status::Ok();
  if (tokens * heads > 0x7fffffffu) return Status::Error("BAD_ARGUMENT", "rope: too many (token, head) pairs for one launch");
  const unsigned blocks = static_cast<unsigned>(tokens * heads);
  const unsigned threads = static_cast<unsigned>(headDim / 2 < 256 ? headDim / 2 : 256);
  if (type == DType::kF32) {
    RopeKernel<float><<<blocks, threads, 0, stream>>>(static_cast<const float*>(x), static_cast<float*>(out), positions, invFreq, attentionFactor, heads, headDim);
  } else {
    RopeKernel<__nv_bfloat16><<<blocks, threads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(out), positions, invFreq,
                                                              attentionFactor, heads, headDim);
  }
  CSKV_CUDA_TRY(cudaGetLastError(), "rope kernel launch");
  return Status::Ok();
}

}  // namespace cskv
