#include "attention.cuh"

#include <cuda_bf16.h>

#include <cmath>

#include "../cudaCheck.h"
#include "../engine/cacheLayout.h"

namespace cskv {

// ---------------------------------------------------------------------------------------------------------------
// kernels

constexpr int kThreads = 128;  // 4 warps
constexpr int kWarps = kThreads / 32;
constexpr int kTile = kAttentionKeyTile;
constexpr int kMaxHeadDim = 256;
constexpr int kValuesPerThread = kMaxHeadDim / kThreads;

__device__ __forceinline__ float Bf16(const uint16_t* p, size_t i) {
  return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(p)[i]);
}

// Channel c of kv head g at position p, from whichever branch holds p.
__device__ __forceinline__ float CachedChannel(const uint16_t* rebuilt, const float* mean, const uint16_t* ring, const AttentionArgs& a,
                                               int64_t p, size_t channel, size_t kvDim) {
  if (p < a.compressedTokens) return Bf16(rebuilt, static_cast<size_t>(p) * kvDim + channel) + mean[channel];
  return Bf16(ring, static_cast<size_t>(p % a.ringRows) * kvDim + channel);
}

// Grid (splits, heads, queries). Each tile of kTile keys: warps score keys (lanes over the rotary pairs), then
// every thread updates its channels of the running weighted sum.
__global__ void __launch_bounds__(kThreads) AttentionPartialsKernel(AttentionArgs a) {
  const int split = blockIdx.x, head = blockIdx.y, query = blockIdx.z;
  const int hd = a.headDim, half = hd / 2;
  const int group = head / (a.heads / a.kvHeads);
  const size_t kvDim = static_cast<size_t>(a.kvHeads) * hd;
  const size_t headBase = static_cast<size_t>(group) * hd;
  const int64_t n = a.start + query;
  int64_t lo = static_cast<int64_t>(split) * a.keysPerSplit;
  int64_t hi = lo + a.keysPerSplit;
  if (hi > n + 1) hi = n + 1;
  if (a.slidingWindow > 0 && lo < n - a.slidingWindow + 1) lo = n - a.slidingWindow + 1;

  __shared__ float q[kMaxHeadDim];
  __shared__ float weights[kTile];
  __shared__ float tileMax[kWarps];
  const float2* table = reinterpret_cast<const float2*>(a.ropeTable);
  // The query, rotated at its position and scaled.
  for (int i = threadIdx.x; i < half; i += kThreads) {
    const float* row = a.q + static_cast<size_t>(query) * a.qStride + static_cast<size_t>(head) * hd;
    const float2 cs = table[static_cast<size_t>(n) * half + i];
    const float x0 = row[i], x1 = row[i + half];
    q[i] = (x0 * cs.x - x1 * cs.y) * a.scale;
    q[i + half] = (x1 * cs.x + x0 * cs.y) * a.scale;
  }
  __syncthreads();

  float acc[kValuesPerThread];
#pragma unroll
  for (int k = 0; k < kValuesPerThread; k++) acc[k] = 0.f;
  float runningMax = -INFINITY, runningSum = 0.f;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int64_t tile = lo; tile < hi; tile += kTile) {
    // Scores: warp w takes keys w, w + kWarps, ... of the tile.
    float warpMax = -INFINITY;
    for (int j = warp; j < kTile; j += kWarps) {
      const int64_t p = tile + j;
      float score = -INFINITY;
      if (p < hi) {
        float dot = 0.f;
        for (int i = lane; i < half; i += 32) {
          const float k0 = CachedChannel(a.kRebuilt, a.kMean, a.kRing, a, p, headBase + i, kvDim);
          const float k1 = CachedChannel(a.kRebuilt, a.kMean, a.kRing, a, p, headBase + i + half, kvDim);
          const float2 cs = table[static_cast<size_t>(p) * half + i];
          dot += q[i] * (k0 * cs.x - k1 * cs.y) + q[i + half] * (k1 * cs.x + k0 * cs.y);
        }
        for (int offset = 16; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        score = dot;
      }
      if (lane == 0) weights[j] = score;
      warpMax = fmaxf(warpMax, score);
    }
    if (lane == 0) tileMax[warp] = warpMax;
    __syncthreads();
    float newMax = runningMax;
#pragma unroll
    for (int w = 0; w < kWarps; w++) newMax = fmaxf(newMax, tileMax[w]);
    // Every tile holds at least one valid key (tile < hi), so newMax is finite from here on.
    const float correction = expf(runningMax - newMax);  // exp(-inf) = 0 on the first tile
    __syncthreads();
    if (threadIdx.x < kTile) {
      const float s = weights[threadIdx.x];
      weights[threadIdx.x] = s == -INFINITY ? 0.f : expf(s - newMax);
    }
    __syncthreads();
    float tileSum = 0.f;
    for (int j = 0; j < kTile; j++) tileSum += weights[j];
    runningSum = runningSum * correction + tileSum;
    runningMax = newMax;
#pragma unroll
    for (int k = 0; k < kValuesPerThread; k++) {
      const int c = threadIdx.x + k * kThreads;
      if (c >= hd) break;
      float sum = acc[k] * correction;
      for (int j = 0; j < kTile && tile + j < hi; j++) {
        sum = fmaf(weights[j], CachedChannel(a.vRebuilt, a.vMean, a.vRing, a, tile + j, headBase + c, kvDim), sum);
      }
      acc[k] = sum;
    }
    __syncthreads();
  }

  float* out = a.partials + ((static_cast<size_t>(query) * a.heads + head) * a.splits + split) * (hd + 2);
#pragma unroll
  for (int k = 0; k < kValuesPerThread; k++) {
    const int c = threadIdx.x + k * kThreads;
    if (c < hd) out[c] = acc[k];
  }
  if (threadIdx.x == 0) {
    out[hd] = runningMax;  // -inf when this split held no visible key
    out[hd + 1] = runningSum;
  }
}

// Grid (heads, queries), one thread per channel.
__global__ void AttentionMergeKernel(const float* partials, int heads, int splits, int hd, __nv_bfloat16* out) {
  const int head = blockIdx.x, query = blockIdx.y, c = threadIdx.x;
  const float* rows = partials + (static_cast<size_t>(query) * heads + head) * splits * (hd + 2);
  float best = -INFINITY;
  for (int s = 0; s < splits; s++) best = fmaxf(best, rows[s * (hd + 2) + hd]);
  float total = 0.f, value = 0.f;
  for (int s = 0; s < splits; s++) {
    const float m = rows[s * (hd + 2) + hd];
    if (m == -INFINITY) continue;
    const float w = expf(m - best);
    total += w * rows[s * (hd + 2) + hd + 1];
    value += w * rows[s * (hd + 2) + c];
  }
  out[static_cast<size_t>(query) * heads * hd + static_cast<size_t>(head) * hd + c] = __float2bfloat16_rn(total > 0.f ? value / total : 0.f);
}

// ---------------------------------------------------------------------------------------------------------------
// launchers

namespace {

Status Check(const AttentionArgs& a) {
  const char* problem = nullptr;
  if (a.queries < 1 || a.heads < 1 || a.kvHeads < 1 || a.heads % a.kvHeads != 0) problem = "queries, heads and kvHeads must be positive, heads a multiple of kvHeads";
  else if (a.headDim < 2 || a.headDim % 2 != 0 || a.headDim > kMaxHeadDim) problem = "headDim must be even and at most 256";
  else if (a.splits < 1 || a.keysPerSplit < 1 || a.keysPerSplit % kTile != 0) problem = "splits and keysPerSplit must be positive, keysPerSplit whole tiles";
  else if (static_cast<int64_t>(a.splits) * a.keysPerSplit < a.start + a.queries) problem = "the splits do not cover every key";
  else if (a.ringRows < 1 || a.start + a.queries - a.compressedTokens > a.ringRows) problem = "the full-precision keys do not fit the ring";
  else if (a.compressedTokens > 0 && (a.kRebuilt == nullptr || a.vRebuilt == nullptr || a.kMean == nullptr || a.vMean == nullptr)) problem = "compressed keys without rebuilt rows";
  else if (a.q == nullptr || a.kRing == nullptr || a.vRing == nullptr || a.ropeTable == nullptr || a.partials == nullptr) problem = "a buffer is missing";
  if (problem != nullptr) return Status::Error("BAD_ARGUMENT", std::string("attention: ") + problem);
  return Status::Ok();
}

}  // namespace

Status LaunchAttentionPartials(const AttentionArgs& a, cudaStream_t stream) {
  CSKV_TRY(Check(a));
  const dim3 grid(static_cast<unsigned>(a.splits), static_cast<unsigned>(a.heads), static_cast<unsigned>(a.queries));
  AttentionPartialsKernel<<<grid, kThreads, 0, stream>>>(a);
  CSKV_CUDA_TRY(cudaGetLastError(), "attention (partials) kernel launch");
  return Status::Ok();
}

Status LaunchAttentionCombine(const AttentionArgs& a, uint16_t* out, cudaStream_t stream) {
  CSKV_TRY(Check(a));
  return LaunchAttentionMerge(a.partials, a.queries, a.heads, a.splits, a.headDim, out, stream);
}

Status LaunchAttentionMerge(const float* partials, int queries, int heads, int splits, int headDim, uint16_t* out, cudaStream_t stream) {
  if (partials == nullptr || out == nullptr || queries < 1 || heads < 1 || splits < 1 || headDim < 1 || headDim > kMaxHeadDim) {
    return Status::Error("BAD_ARGUMENT", "attention (merge): bad partial rows");
  }
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(queries));
  AttentionMergeKernel<<<grid, static_cast<unsigned>(headDim), 0, stream>>>(partials, heads, splits, headDim, reinterpret_cast<__nv_bfloat16*>(out));
  CSKV_CUDA_TRY(cudaGetLastError(), "attention (merge) kernel launch");
  return Status::Ok();
}

}  // namespace cskv
