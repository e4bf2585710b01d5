// How both fused attention kernels (decode: fusedAttention.cu, prefill: fusedPrefillAttention.cu) read the paged
// bi-branch cache of FusedAttentionSources, one tile of kFusedAttentionKeyTile keys at a time: which of the tile's
// keys are in the pages, their features (PageFeature: fp16, or 8/4/2-bit codes with their (scale, zero) pairs),
// keys rebuilt as mean + U f or read from the bf16 ring and rotated at their position, the ring's values, and the
// compressed values' one projection V (sum w f) + mean * (sum w). Device code only, written once so that the two
// kernels read the cache alike; each kernel keeps its own tiling, shared memory and softmax.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

#include "fusedAttention.cuh"
#include "pageFeatures.cuh"

namespace cskv {

// Element i of a bf16 buffer.
__device__ __forceinline__ float Bf16(const uint16_t* p, size_t i) { return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(p)[i]); }

// The rotary pair (x0, x1) rotated by (cos, sin).
__device__ __forceinline__ float2 Rotate(float x0, float x1, float2 cs) { return make_float2(x0 * cs.x - x1 * cs.y, x1 * cs.x + x0 * cs.y); }

// How many of the `count` keys of the tile at position `tile` are in the pages: those come first, the ring holds the rest.
__device__ __forceinline__ int CompressedCount(int64_t compressedTokens, int64_t tile, int count) {
  const int64_t inPages = compressedTokens - tile;
  return inPages <= 0 ? 0 : inPages >= count ? count : static_cast<int>(inPages);
}

// The features of the tile's first `tokens` tokens into feats [tokens, rank].
template <int kThreads>
__device__ __forceinline__ void LoadTileFeatures(const PageFeatures& f, int rank, int64_t tile, int tokens, float* feats) {
  for (int i = threadIdx.x; i < tokens * rank; i += kThreads) {
    const int j = i / rank, r = i % rank;
    const int64_t p = tile + j;
    feats[i] = PageFeature(f, static_cast<size_t>(p / f.window), static_cast<size_t>(p % f.window), r);
  }
}

// The tile's `count` keys of the kv head at channel `base` into kv [count, headDim], rotated at their positions, a
// thread per rotary pair of a key: keys below compressedCount rebuilt from feats [compressedCount, kRank], the rest
// read from the ring. With skipCompressed the rebuilt keys are already in kv (the decode kernel's tiled rebuild).
template <int kThreads>
__device__ __forceinline__ void StoreTileKeys(const FusedAttentionSources& a, const float* feats, int kRank, int64_t tile, int count,
                                              int compressedCount, bool skipCompressed, size_t base, float* kv) {
  const int hd = a.headDim, half = hd / 2;
  const size_t kvDim = static_cast<size_t>(a.kvHeads) * hd;
  const float2* table = reinterpret_cast<const float2*>(a.ropeTable);
  for (int i = threadIdx.x; i < count * half; i += kThreads) {
    const int j = i / half, c = i % half;
    if (skipCompressed && j < compressedCount) continue;
    const int64_t p = tile + j;
    float k0, k1;
    if (j < compressedCount) {
      k0 = a.kMean[base + c];
      k1 = a.kMean[base + c + half];
      const float* f = feats + j * kRank;
      const float* u = a.kBasisT + base + c;
      for (int r = 0; r < kRank; r++) {
        k0 = fmaf(f[r], __ldg(u + r * kvDim), k0);
        k1 = fmaf(f[r], __ldg(u + r * kvDim + half), k1);
      }
    } else {
      const size_t row = static_cast<size_t>(p % a.ringRows) * kvDim + base;
      k0 = Bf16(a.kRing, row + c);
      k1 = Bf16(a.kRing, row + c + half);
    }
    const float2 k = Rotate(k0, k1, table[static_cast<size_t>(p) * half + c]);
    kv[j * hd + c] = k.x;
    kv[j * hd + c + half] = k.y;
  }
}

// The ring values of the tile's keys from compressedCount to count into kv [count, headDim] (rows below
// compressedCount are left as they are).
template <int kThreads>
__device__ __forceinline__ void LoadTileRingValues(const FusedAttentionSources& a, int64_t tile, int count, int compressedCount, size_t base, float* kv) {
  const int hd = a.headDim;
  const size_t kvDim = static_cast<size_t>(a.kvHeads) * hd;
  for (int i = threadIdx.x; i < (count - compressedCount) * hd; i += kThreads) {
    const int j = compressedCount + i / hd, c = i % hd;
    kv[j * hd + c] = Bf16(a.vRing, static_cast<size_t>((tile + j) % a.ringRows) * kvDim + base + c);
  }
}

// Channel `c` of the kv head at channel `base` for one query row: its ring values' weighted sum `ringSum` plus its
// compressed values, projected once from their weighted features [vRank] and the sum of their weights.
__device__ __forceinline__ float AddCompressedValues(const FusedAttentionSources& a, float ringSum, float compressedWeights,
                                                     const float* weightedFeatures, int vRank, size_t base, int c) {
  const size_t kvDim = static_cast<size_t>(a.kvHeads) * a.headDim;
  float value = fmaf(compressedWeights, a.vMean[base + c], ringSum);
  const float* u = a.vBasisT + base + c;
  for (int r = 0; r < vRank; r++) value = fmaf(weightedFeatures[r], __ldg(u + r * kvDim), value);
  return value;
}

}  // namespace cskv
