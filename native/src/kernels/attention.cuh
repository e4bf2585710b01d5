// Attention of a chunk of queries over both branches of the cache (cskv.md), split over the keys flash-decoding
// style: AttentionPartials computes, per (query, head, split), the softmax-weighted sum over the split's keys with
// its running max and sum; AttentionCombine merges the splits into the output row.
//
// Key/value at position p, for kv head g, channel c (pre-RoPE; keys are rotated here with the table):
//   p < compressedTokens: rebuilt[p, g*hd + c] + mean[g*hd + c]   (rebuilt = features U^T, from the GEMM)
//   otherwise:            ring[p % ringRows, g*hd + c]
// Query n = start + t sees keys 0..n (causal), and only n - slidingWindow < p when slidingWindow > 0.
// Query head h uses kv head h / (heads / kvHeads) (transformers' repeat_kv).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"

namespace cskv {

struct AttentionArgs {
  const float* q = nullptr;  // [queries, qStride], head h at column h * headDim (pre-RoPE)
  size_t qStride = 0;
  const uint16_t* kRebuilt = nullptr;  // bf16 [compressedTokens, kvDim]
  const uint16_t* vRebuilt = nullptr;
  const float* kMean = nullptr;  // [kvDim]
  const float* vMean = nullptr;
  const uint16_t* kRing = nullptr;  // bf16 [ringRows, kvDim]
  const uint16_t* vRing = nullptr;
  int ringRows = 1;
  int64_t compressedTokens = 0;
  const float* ropeTable = nullptr;  // [positions, headDim / 2, 2] (cos, sin)
  int64_t start = 0;                 // position of query 0
  int queries = 0;
  int heads = 0;
  int kvHeads = 0;
  int headDim = 0;
  int slidingWindow = 0;
  float scale = 1.f;  // 1 / sqrt(headDim)
  int splits = 1;
  int64_t keysPerSplit = 0;
  float* partials = nullptr;  // [queries * heads * splits, headDim + 2]: weighted sum, max, sum of weights
};

Status LaunchAttentionPartials(const AttentionArgs& args, cudaStream_t stream);

// out: bf16 [queries, heads * headDim].
Status LaunchAttentionCombine(const AttentionArgs& args, uint16_t* out, cudaStream_t stream);

// The merge itself, for any producer of partial rows [queries * heads * splits, headDim + 2] (weighted sum, max,
// sum of weights; a split with no visible key has max -inf): AttentionCombine and the fused decode attention.
Status LaunchAttentionMerge(const float* partials, int queries, int heads, int splits, int headDim, uint16_t* out, cudaStream_t stream);

}  // namespace cskv
