// Where the CUDA engine keeps its bi-branch cache (cskv.md), as pure arithmetic shared by the device code and the
// CPU tests: every byte is reserved when the engine is made, so a long context fails at load time with
// OUT_OF_MEMORY instead of in the middle of a prefill.
//
// Per layer:
// - the full-precision branch is a ring of `fullCapacity` rows: position p lives in row p % fullCapacity, as bf16
//   pre-RoPE keys and values, plus (CSKV on) its rank-r features in f32 until its block leaves the window;
// - the compressed branch is `maxBlocks` pages of one block of W tokens each: block b lives in page b. A page holds
//   the block's key features then its value features, as fp16 (16 bits) or packed codes with fp16 (scale, zero)
//   pairs laid out exactly as src/runtime/cache/quantizer.ts lays out a QuantisedBlock.
// The block-window policy itself (positions below floor(n / W) * W are compressed, what a truncation keeps, where
// prefill chunks end) is cskv.md's, written for the runtime in src/runtime/cache/cachePolicy.ts. The rules the
// engine applies are here (CompressedBoundary, PlanTruncation, the ring and chunk sizes), exported to JS, and
// test/native/cachePolicyAgreement.test.ts fails when the two disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../status.h"

namespace cskv {

struct CacheSpec {
  int layers = 0;
  int kvDim = 0;
  int window = 32;
  int bits = 16;                // of the compressed branch: 16, 8, 4 or 2
  std::vector<int> kRanks;      // empty: CSKV off (an ordinary cache, nothing is ever compressed)
  std::vector<int> vRanks;
  int64_t capacityTokens = 0;   // the longest context the cache holds
  int chunkTokens = 512;        // the longest prefill chunk the engine runs
  bool compressed() const { return !kRanks.empty(); }
};

// Byte offsets inside one page (one block of W tokens of one layer).
struct PageLayout {
  size_t kData = 0;        // fp16 [W, rk] at 16 bits, else packed codes [W, rk]
  size_t kScaleZero = 0;   // rk (scale, zero) fp16 pairs; unused at 16 bits
  size_t vData = 0;
  size_t vScaleZero = 0;   // W * ceil(rv / 32) pairs; unused at 16 bits
  size_t bytes = 0;        // padded to 16 so every page starts aligned
};

struct LayerLayout {
  int kRank = 0;
  int vRank = 0;
  PageLayout page;
  size_t fullReservedBytes = 0;        // ring of bf16 keys + values + f32 features
  size_t compressedReservedBytes = 0;  // maxBlocks pages
};

struct CacheLayout {
  CacheSpec spec;
  int64_t capacityTokens = 0;  // spec.capacityTokens rounded down to whole blocks when compressed
  int fullCapacity = 0;        // rows of the full-precision ring
  int maxChunkTokens = 0;      // the longest forward: chunkTokens, and at least one block when compressed
  int64_t maxBlocks = 0;
  std::vector<LayerLayout> layers;
  size_t reservedBytes = 0;
};

// Checks the spec (naming the bad field) and lays the cache out.
Status PlanCache(const CacheSpec& spec, CacheLayout& layout);

// The page layout of one block at `bits` (pure; PlanCache uses it per layer).
PageLayout PlanPage(int window, int kRank, int vRank, int bits);

struct HeldBytes {
  size_t fullBytes = 0;
  size_t compressedBytes = 0;
};

// Bytes one layer actually holds with `tokens` cached of which `compressedTokens` are in the compressed branch.
HeldBytes LayerHeldBytes(const CacheLayout& layout, int layer, int64_t tokens, int64_t compressedTokens);

// The block-window policy: with `tokens` held, every position below this one is in the compressed branch.
inline int64_t CompressedBoundary(const CacheLayout& layout, int64_t tokens) {
  if (!layout.spec.compressed()) return 0;
  return tokens / layout.spec.window * layout.spec.window;
}

// Dropping every position at or after `length` from a cache with `compressedTokens` compressed: inside the window
// rows are cut; inside the compressed branch only whole blocks below `length` stay and the engine recomputes the
// rest from recomputeFrom (truncation in src/runtime/cache/cachePolicy.ts).
struct TruncationPlan {
  int64_t compressedTokens = 0;
  int64_t fullTokens = 0;
  int64_t recomputeFrom = 0;
};
TruncationPlan PlanTruncation(const CacheLayout& layout, int64_t compressedTokens, int64_t length);

// How the attention of T queries over S keys is split over the GPU (flash-decoding): each (query, head) is cut
// into `splits` runs of `keysPerSplit` keys (a multiple of kAttentionKeyTile) whose partial results a second
// kernel combines. Few queries (decode) get many splits so that the GPU is filled; a prefill chunk gets one.
constexpr int kAttentionKeyTile = 64;
constexpr int kAttentionMaxSplits = 128;
struct AttentionPlan {
  int splits = 1;
  int64_t keysPerSplit = 0;
  size_t partialRows = 0;  // queries * heads * splits
};
AttentionPlan PlanAttention(int64_t queries, int64_t keys, int heads, int multiprocessors);
// An upper bound of partialRows over every call the engine can make, for its scratch buffer.
size_t MaxAttentionPartialRows(int64_t maxQueries, int heads, int multiprocessors);

// The fused decode attention (kernels/fusedAttention.cuh) runs one block per (split, kv head, query) serving the
// kv head's query heads together, folding keys in tiles of kFusedAttentionKeyTile: the GPU is filled by kv heads,
// and partialRows counts every query head.
constexpr int kFusedAttentionKeyTile = 32;
static_assert(kAttentionKeyTile % kFusedAttentionKeyTile == 0, "a split is whole fused tiles");
AttentionPlan PlanFusedAttention(int64_t queries, int64_t keys, int heads, int kvHeads, int multiprocessors);
size_t MaxFusedAttentionPartialRows(int64_t maxQueries, int heads, int kvHeads, int multiprocessors);

// The fused prefill attention (kernels/fusedPrefillAttention.cuh) gives each block a tile of this many query rows of
// one kv head (rows are (query, query head of the group) pairs, query-major), and folds keys in tiles of
// kFusedAttentionKeyTile from the first key its first row sees to the last its last row sees: no splits, no merge.
constexpr int kFusedPrefillRowTile = 64;

}  // namespace cskv
