#include "kvCache.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../cudaCheck.h"
#include "elementAccess.cuh"
#include "pageFeatures.cuh"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

__global__ void WriteKvKernel(const float* rows, size_t rowStride, size_t kColumn, size_t vColumn, __nv_bfloat16* kRing, __nv_bfloat16* vRing,
                              int64_t firstPosition, size_t count, size_t channels, int ringRows) {
  const size_t total = count * channels;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t t = i / channels, c = i % channels;
    const size_t slot = static_cast<size_t>((firstPosition + static_cast<int64_t>(t)) % ringRows);
    kRing[slot * channels + c] = __float2bfloat16_rn(rows[t * rowStride + kColumn + c]);
    vRing[slot * channels + c] = __float2bfloat16_rn(rows[t * rowStride + vColumn + c]);
  }
}

// One thread per (token, feature): consecutive threads read consecutive basis entries of one row.
__global__ void ProjectFeaturesKernel(const float* rows, size_t rowStride, size_t column, const float* mean, const float* basis, float* ring,
                                      int64_t firstPosition, size_t count, size_t channels, int rank, int ringRows) {
  const size_t total = count * rank;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t t = i / rank, j = i % rank;
    const float* x = rows + t * rowStride + column;
    float sum = 0.f;
    for (size_t c = 0; c < channels; c++) sum = fmaf(x[c] - mean[c], basis[c * rank + j], sum);
    ring[static_cast<size_t>((firstPosition + static_cast<int64_t>(t)) % ringRows) * rank + j] = sum;
  }
}

__global__ void StoreFeatures16Kernel(const float* in, __half* out, size_t count) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2half_rn(in[i]);
  }
}

__global__ void UnpackFeaturesKernel(PageFeatures f, int64_t tokens, __nv_bfloat16* out) {
  const size_t total = static_cast<size_t>(tokens) * f.rank;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t p = i / f.rank, j = i % f.rank;
    out[i] = __float2bfloat16_rn(PageFeature(f, p / f.window, p % f.window, j));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

constexpr int kThreads = 256;

Status LaunchWriteKv(const float* rows, size_t rowStride, size_t kColumn, size_t vColumn, uint16_t* kRing, uint16_t* vRing,
                     int64_t firstPosition, size_t count, size_t channels, int ringRows, cudaStream_t stream) {
  if (count * channels == 0) return Status::Ok();
  if (ringRows < 1 || count > static_cast<size_t>(ringRows)) return Status::Error("BAD_ARGUMENT", "writeKv: the chunk is longer than the ring");
  WriteKvKernel<<<GridFor(count * channels, kThreads), kThreads, 0, stream>>>(rows, rowStride, kColumn, vColumn, reinterpret_cast<__nv_bfloat16*>(kRing),
                                                                              reinterpret_cast<__nv_bfloat16*>(vRing), firstPosition, count, channels, ringRows);
  CSKV_CUDA_TRY(cudaGetLastError(), "writeKv kernel launch");
  return Status::Ok();
}

Status LaunchProjectFeatures(const float* rows, size_t rowStride, size_t column, const float* mean, const float* basis, float* ring,
                             int64_t firstPosition, size_t count, size_t channels, int rank, int ringRows, cudaStream_t stream) {
  if (count == 0 || rank == 0) return Status::Ok();
  if (ringRows < 1 || count > static_cast<size_t>(ringRows)) return Status::Error("BAD_ARGUMENT", "projectFeatures: the chunk is longer than the ring");
  ProjectFeaturesKernel<<<GridFor(count * rank, kThreads), kThreads, 0, stream>>>(rows, rowStride, column, mean, basis, ring, firstPosition, count,
                                                                                  channels, rank, ringRows);
  CSKV_CUDA_TRY(cudaGetLastError(), "projectFeatures kernel launch");
  return Status::Ok();
}

Status LaunchStoreFeatures16(const float* in, uint16_t* out, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::Ok();
  StoreFeatures16Kernel<<<GridFor(count, kThreads), kThreads, 0, stream>>>(in, reinterpret_cast<__half*>(out), count);
  CSKV_CUDA_TRY(cudaGetLastError(), "storeFeatures16 kernel launch");
  return Status::Ok();
}

Status LaunchUnpackFeatures(const uint8_t* pages, size_t pageBytes, size_t dataOffset, size_t scaleZeroOffset, int bits, QuantGrouping grouping,
                            int window, int rank, int64_t tokens, uint16_t* out, cudaStream_t stream) {
  if (tokens <= 0 || rank == 0) return Status::Ok();
  if (bits != 16 && bits != 8 && bits != 4 && bits != 2) return Status::Error("BAD_ARGUMENT", "unpackFeatures: bits must be 16, 8, 4 or 2");
  if (window < 1 || tokens % window != 0) return Status::Error("BAD_ARGUMENT", "unpackFeatures: tokens must be whole blocks");
  PageFeatures f;
  f.pages = pages;
  f.pageBytes = pageBytes;
  f.dataOffset = dataOffset;
  f.scaleZeroOffset = scaleZeroOffset;
  f.bits = bits;
  f.keys = grouping == QuantGrouping::kKeysPerChannel;
  f.window = window;
  f.rank = rank;
  UnpackFeaturesKernel<<<GridFor(static_cast<size_t>(tokens) * rank, kThreads), kThreads, 0, stream>>>(f, tokens, reinterpret_cast<__nv_bfloat16*>(out));
  CSKV_CUDA_TRY(cudaGetLastError(), "unpackFeatures kernel launch");
  return Status::Ok();
}

}  // namespace cskv
