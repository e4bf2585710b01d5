#include "embedding.cuh"

#include <cuda_bf16.h>

#include "../cudaCheck.h"
#include "elementAccess.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

__global__ void EmbeddingKernel(const __nv_bfloat16* table, const int32_t* tokens, float* out, size_t count, size_t hidden) {
  const size_t total = count * hidden;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t t = i / hidden, c = i % hidden;
    out[i] = __bfloat162float(table[static_cast<size_t>(tokens[t]) * hidden + c]);
  }
}

__global__ void EmbeddingQ8Kernel(const int8_t* codes, const float* scales, const int32_t* tokens, float* out, size_t count, size_t hidden) {
  const size_t total = count * hidden, blocksPerRow = (hidden + kQ8Block - 1) / kQ8Block, rowCodes = blocksPerRow * kQ8Block;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t t = i / hidden, c = i % hidden, row = static_cast<size_t>(tokens[t]);
    // Rounded to bf16 as a bf16 table of the same values would hold it (and as the q8 prefill tiles are).
    out[i] = __bfloat162float(__float2bfloat16_rn(static_cast<float>(codes[row * rowCodes + c]) * scales[row * blocksPerRow + c / kQ8Block]));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

Status LaunchEmbedding(const uint16_t* table, const int32_t* tokens, float* out, size_t count, size_t hidden, cudaStream_t stream) {
  if (count * hidden == 0) return Status::Ok();
  constexpr int kThreads = 256;
  EmbeddingKernel<<<GridFor(count * hidden, kThreads), kThreads, 0, stream>>>(reinterpret_cast<const __nv_bfloat16*>(table), tokens, out, count, hidden);
  CSKV_CUDA_TRY(cudaGetLastError(), "embedding kernel launch");
  return Status::Ok();
}

Status LaunchEmbeddingQ8(const Q8Weight& table, const int32_t* tokens, float* out, size_t count, cudaStream_t stream) {
  if (count * table.k == 0) return Status::Ok();
  constexpr int kThreads = 256;
  EmbeddingQ8Kernel<<<GridFor(count * table.k, kThreads), kThreads, 0, stream>>>(table.codes, table.scales, tokens, out, count, table.k);
  CSKV_CUDA_TRY(cudaGetLastError(), "embedding (q8) kernel launch");
  return Status::Ok();
}

}  // namespace cskv
