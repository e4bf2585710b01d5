// Prefill attention over both cache branches in one kernel (cskv.md), flash-attention style: no rebuilt keys or
// values in scratch and no splits to merge. Each block takes a tile of kFusedPrefillRowTile query rows of one kv
// head (the rows are (query, query head of the kv head's group) pairs, so GQA's heads share every key the block
// rebuilds) and folds the keys those rows see in tiles of kFusedAttentionKeyTile:
// - compressed keys are rebuilt on chip from their pages (PageFeature: fp16, or 8/4/2-bit codes with their
//   (scale, zero) pairs), k = mean + U f, rotated at their position; full-precision keys come from the bf16 ring;
// - causal and sliding-window masks per row; the scores' running max and sum per row (online softmax, f32);
// - values are never rebuilt: the compressed tokens' weights sum their features in rank space and the block ends
//   with one projection per row, V (sum w f) + mean * (sum w), added to the ring values' weighted sum.
// The decode kernel (fusedAttention.cuh) reads the same sources. Float64 reference:
// ../reference/fusedAttentionReference.h (FusedPrefillAttentionReference).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "fusedAttention.cuh"

namespace cskv {

struct FusedPrefillAttentionArgs : FusedAttentionSources {
  uint16_t* out = nullptr;  // bf16 [queries, outStride], head h at column h * headDim
  size_t outStride = 0;
};

// Shared memory one block needs for these arguments (its query rows, key tile, scores and accumulators).
size_t FusedPrefillAttentionSharedBytes(const FusedPrefillAttentionArgs& args);

Status LaunchFusedPrefillAttention(const FusedPrefillAttentionArgs& args, cudaStream_t stream);

}  // namespace cskv
