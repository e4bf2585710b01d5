#include "cacheLayout.h"

#include <algorithm>

namespace cskv {
namespace {

constexpr int kValueGroupChannels = 32;  // VALUE_GROUP of src/runtime/cache/quantizer.ts

size_t AlignUp(size_t value, size_t alignment) { return (value + alignment - 1) / alignment * alignment; }
size_t Packed(size_t count, int bits) { return (count * static_cast<size_t>(bits) + 7) / 8; }

Status Bad(const std::string& what) { return Status::Error("BAD_ARGUMENT", "cache layout: " + what); }

}  // namespace

PageLayout PlanPage(int window, int kRank, int vRank, int bits) {
  PageLayout page;
  const size_t W = static_cast<size_t>(window);
  if (bits == 16) {
    page.kData = 0;
    page.vData = W * kRank * 2;
    page.kScaleZero = page.vScaleZero = 0;
    page.bytes = AlignUp(page.vData + W * vRank * 2, 16);
    return page;
  }
  // fp16 pairs must sit on 2-byte boundaries (4 keeps each pair in one word), so each part is aligned.
  page.kData = 0;
  page.kScaleZero = AlignUp(Packed(W * kRank, bits), 4);
  page.vData = page.kScaleZero + static_cast<size_t>(kRank) * 4;
  page.vScaleZero = AlignUp(page.vData + Packed(W * vRank, bits), 4);
  const size_t valuePairs = W * ((vRank + kValueGroupChannels - 1) / kValueGroupChannels);
  page.bytes = AlignUp(page.vScaleZero + valuePairs * 4, 16);
  return page;
}

Status PlanCache(const CacheSpec& spec, CacheLayout& layout) {
  if (spec.layers < 1) return Bad("layers must be at least 1");
  if (spec.kvDim < 1) return Bad("kvDim must be at least 1");
  if (spec.window < 1) return Bad("window must be at least 1");
  if (spec.bits != 16 && spec.bits != 8 && spec.bits != 4 && spec.bits != 2) return Bad("bits must be 16, 8, 4 or 2");
  if (spec.chunkTokens < 1) return Bad("chunkTokens must be at least 1");
  if (spec.capacityTokens < 1) return Bad("capacityTokens must be at least 1");
  if (spec.kRanks.size() != spec.vRanks.size()) return Bad("kRanks and vRanks differ in length");
  if (spec.compressed() && spec.kRanks.size() != static_cast<size_t>(spec.layers)) {
    return Bad("ranks are given for " + std::to_string(spec.kRanks.size()) + " layers, the model has " + std::to_string(spec.layers));
  }
  layout = CacheLayout{};
  layout.spec = spec;
  const size_t D = static_cast<size_t>(spec.kvDim);
  if (spec.compressed()) {
    const int64_t W = spec.window;
    if (spec.capacityTokens < W) return Bad("capacityTokens must hold at least one block of W tokens");
    layout.capacityTokens = spec.capacityTokens / W * W;
    layout.maxBlocks = layout.capacityTokens / W;
    // The ring holds what has not yet left the window (< W tokens) plus one chunk, which never crosses a block
    // boundary unless it starts on one (nextChunkEnd in src/runtime/engine.ts).
    const int64_t chunk = std::max<int64_t>(W, spec.chunkTokens / W * W);
    layout.fullCapacity = static_cast<int>(std::min<int64_t>(chunk + W, layout.capacityTokens + W));
    layout.maxChunkTokens = std::max(spec.chunkTokens, spec.window);
  } else {
    layout.capacityTokens = spec.capacityTokens;
    layout.maxBlocks = 0;
    if (spec.capacityTokens > 0x7fffffff) return Bad("capacityTokens is too large");
    layout.fullCapacity = static_cast<int>(spec.capacityTokens);
    layout.maxChunkTokens = spec.chunkTokens;
  }
  for (int i = 0; i < spec.layers; i++) {
    LayerLayout l;
    if (spec.compressed()) {
      l.kRank = spec.kRanks[i];
      l.vRank = spec.vRanks[i];
      if (l.kRank < 1 || l.kRank > spec.kvDim || l.vRank < 1 || l.vRank > spec.kvDim) {
        return Bad("layer " + std::to_string(i) + " ranks must be in 1.." + std::to_string(spec.kvDim));
      }
      l.page = PlanPage(spec.window, l.kRank, l.vRank, spec.bits);
    }
    l.fullReservedBytes = static_cast<size_t>(layout.fullCapacity) * (2 * D * 2 + static_cast<size_t>(l.kRank + l.vRank) * 4);
    l.compressedReservedBytes = static_cast<size_t>(layout.maxBlocks) * l.page.bytes;
    layout.reservedBytes += l.fullReservedBytes + l.compressedReservedBytes;
    layout.layers.push_back(l);
  }
  return Status::Ok();
}

HeldBytes LayerHeldBytes(const CacheLayout& layout, int layer, int64_t tokens, int64_t compressedTokens) {
  const LayerLayout& l = layout.layers[layer];
  const size_t D = static_cast<size_t>(layout.spec.kvDim);
  HeldBytes held;
  const size_t fullTokens = static_cast<size_t>(tokens - compressedTokens);
  held.fullBytes = fullTokens * (2 * D * 2 + static_cast<size_t>(l.kRank + l.vRank) * 4);
  held.compressedBytes = layout.spec.compressed() ? static_cast<size_t>(compressedTokens / layout.spec.window) * l.page.bytes : 0;
  return held;
}

TruncationPlan PlanTruncation(const CacheLayout& layout, int64_t compressedTokens, int64_t length) {
  TruncationPlan plan;
  if (length >= compressedTokens) {
    plan.compressedTokens = compressedTokens;
    plan.fullTokens = length - compressedTokens;
    plan.recomputeFrom = length;
    return plan;
  }
  const int64_t W = layout.spec.window;
  plan.compressedTokens = plan.recomputeFrom = length / W * W;
  return plan;
}

AttentionPlan PlanAttention(int64_t queries, int64_t keys, int heads, int multiprocessors) {
  AttentionPlan plan;
  const int64_t tiles = std::max<int64_t>(1, (keys + kAttentionKeyTile - 1) / kAttentionKeyTile);
  const int64_t rows = queries * heads;
  // Aim for four blocks per multiprocessor; never more splits than key tiles.
  const int64_t wanted = (4 * static_cast<int64_t>(std::max(1, multiprocessors)) + rows - 1) / std::max<int64_t>(1, rows);
  const int64_t splits = std::max<int64_t>(1, std::min<int64_t>({wanted, tiles, kAttentionMaxSplits}));
  const int64_t tilesPerSplit = (tiles + splits - 1) / splits;
  plan.keysPerSplit = tilesPerSplit * kAttentionKeyTile;
  plan.splits = static_cast<int>((tiles + tilesPerSplit - 1) / tilesPerSplit);
  plan.partialRows = static_cast<size_t>(rows) * plan.splits;
  return plan;
}

size_t MaxAttentionPartialRows(int64_t maxQueries, int heads, int multiprocessors) {
  // splits <= ceil(4 * sms / rows), so rows * splits < rows + 4 * sms.
  return static_cast<size_t>(maxQueries * heads + 4 * static_cast<int64_t>(std::max(1, multiprocessors)));
}

AttentionPlan PlanFusedAttention(int64_t queries, int64_t keys, int heads, int kvHeads, int multiprocessors) {
  AttentionPlan plan = PlanAttention(queries, keys, kvHeads, multiprocessors);
  plan.partialRows = static_cast<size_t>(queries * heads) * plan.splits;
  return plan;
}

size_t MaxFusedAttentionPartialRows(int64_t maxQueries, int heads, int kvHeads, int multiprocessors) {
  return MaxAttentionPartialRows(maxQueries, kvHeads, multiprocessors) * static_cast<size_t>(heads / std::max(1, kvHeads));
}

}  // namespace cskv
