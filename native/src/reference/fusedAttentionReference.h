// Plain C++ float64 references of the fused decode and prefill attention (kernels/fusedAttention.cuh,
// fusedPrefillAttention.cuh), compiled in every build so the CPU tests check their math (splits merged == one pass,
// row tiles == one pass; == the rebuild path's attention reference on the runtime's own dequantised features) and
// the GPU tests check the kernels against them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cskv {

struct FusedAttentionInputs {
  const float* q = nullptr;  // [queries, heads * headDim], pre-RoPE
  const float* kRing = nullptr;  // [ringRows, kvDim], position p (>= compressedTokens) at row p % ringRows, pre-RoPE,
  const float* vRing = nullptr;  // as stored (bf16 values on the device)
  int ringRows = 1;
  int64_t compressedTokens = 0;  // whole blocks of `window`
  int window = 1;
  int bits = 16;
  int kRank = 0;
  int vRank = 0;
  const uint8_t* pages = nullptr;  // [compressedTokens / window, PlanPage(window, kRank, vRank, bits).bytes]
  const float* kBasis = nullptr;   // [kvDim, kRank], as the engine loads it
  const float* vBasis = nullptr;   // [kvDim, vRank]
  const float* kMean = nullptr;    // [kvDim]
  const float* vMean = nullptr;
  const double* invFreq = nullptr;  // [headDim / 2]
  double attentionFactor = 1.0;
  int64_t start = 0;  // position of query 0; query t sees keys 0..start + t (and the sliding window)
  int queries = 0, heads = 0, kvHeads = 0, headDim = 0, slidingWindow = 0;
};

// out: [queries, heads * headDim]. keysPerSplit 0: one pass, a softmax over every visible key with each compressed
// key and value rebuilt (mean + U f). keysPerSplit > 0 (whole tiles of kFusedAttentionKeyTile): the kernel's
// decomposition: splits of that many positions, each folded tile by tile with a running max, the compressed
// values' weights summed in rank space and projected once per split, the splits merged by their maxima.
void FusedAttentionReference(const FusedAttentionInputs& in, int64_t keysPerSplit, double* out);

// The fused prefill attention's decomposition (kernels/fusedPrefillAttention.cuh) of the same attention, out as
// above: each kv head's rows (query, query head of its group; query-major) in tiles of rowsPerTile (the kernel's
// kFusedPrefillRowTile), each row folded with a running max over key tiles of kFusedAttentionKeyTile counted from
// the first key the tile's first row sees, masked to the keys the row sees (causal, sliding window), the compressed
// values' weights summed in rank space and projected once per row.
void FusedPrefillAttentionReference(const FusedAttentionInputs& in, int rowsPerTile, double* out);

}  // namespace cskv
