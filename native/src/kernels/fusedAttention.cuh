// Decode attention over both cache branches in one kernel, flash-decoding style (cskv.md): no rebuilt keys or
// values in scratch. Each block takes one split of the cached tokens for one kv head and one query, and serves
// all of that kv head's query heads (GQA) from the same keys:
// - a tile of compressed keys is rebuilt on chip from its page (fp16 features, or 8/4/2-bit codes with their
//   (scale, zero) pairs): k = mean + U f, then rotated at its position; full-precision keys come from the bf16 ring;
// - the scores' running max and sum are kept per query head (online softmax over the tiles);
// - values are never rebuilt: the compressed tokens' weights sum their features in rank space (sum_p w_p f_p) and
//   the split ends with one projection, V (sum w f) + mean * (sum w), added to the ring values' weighted sum.
// The partial rows are the ones AttentionCombine writes, so LaunchAttentionMerge merges the splits.
// Contract and float64 reference: ../reference/fusedAttentionReference.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "quantLayout.h"

namespace cskv {

// The engine uses the fused kernel for chunks of at most this many queries (decode); each query's block
// rebuilds its keys again, so a prefill chunk takes the rebuild + GEMM path or fusedPrefillAttention.cuh (whose
// blocks share each rebuilt key among 64 query rows).
constexpr int kFusedDecodeMaxQueries = 8;

// The queries and both cache branches as the fused kernels read them (decode here, prefill in
// fusedPrefillAttention.cuh).
struct FusedAttentionSources {
  const float* q = nullptr;  // [queries, qStride], head h at column h * headDim (pre-RoPE)
  size_t qStride = 0;
  const uint16_t* kRing = nullptr;  // bf16 [ringRows, kvDim], position p at row p % ringRows (pre-RoPE)
  const uint16_t* vRing = nullptr;
  int ringRows = 1;
  int64_t compressedTokens = 0;  // positions below it are in the pages (whole blocks)
  PageFeatures kFeatures;        // keys = true
  PageFeatures vFeatures;        // keys = false
  const float* kBasisT = nullptr;  // f32 [kRank, kvDim]: the basis transposed, so neighbouring threads read neighbouring channels
  const float* vBasisT = nullptr;  // f32 [vRank, kvDim]
  const float* kMean = nullptr;    // [kvDim]
  const float* vMean = nullptr;
  const float* ropeTable = nullptr;  // [positions, headDim / 2, 2] (cos, sin)
  int64_t start = 0;                 // position of query 0
  int queries = 0;
  int heads = 0;
  int kvHeads = 0;
  int headDim = 0;
  int slidingWindow = 0;
  float scale = 1.f;  // 1 / sqrt(headDim)
};

struct FusedAttentionArgs : FusedAttentionSources {
  int splits = 1;
  int64_t keysPerSplit = 0;  // whole tiles of kFusedAttentionKeyTile (cacheLayout.h: PlanFusedAttention)
  float* partials = nullptr;  // [queries * heads * splits, headDim + 2]: weighted sum, max, sum of weights
};

// The checks both fused kernels make of their sources, naming `kernel`: shapes, the ring holding every
// full-precision key, the compressed branch whole blocks at 16/8/4/2 bits with its bases and means.
Status CheckFusedAttentionSources(const FusedAttentionSources& args, const char* kernel);

// Lets `kernel` take `bytes` of dynamic shared memory (opting in above the default 48 KiB), or says the GPU cannot.
Status AllowSharedBytes(const void* kernel, size_t bytes, const char* op, const FusedAttentionSources& args);

// Shared memory one block needs for these arguments (the kernel's tiles and accumulators).
size_t FusedAttentionSharedBytes(const FusedAttentionArgs& args);

Status LaunchFusedAttentionPartials(const FusedAttentionArgs& args, cudaStream_t stream);

// out[cols, rows] = in[rows, cols]^T (f32): the engine's basis [kvDim, rank] as the kernel reads it.
Status LaunchTransposeF32(const float* in, size_t rows, size_t cols, float* out, cudaStream_t stream);

}  // namespace cskv
