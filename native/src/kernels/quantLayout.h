// Sizes of a quantised block (quantise.cuh) and where a page's features sit, shared by host code that has no CUDA headers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cskv {

// Value channels sharing one (scale, zero) pair; VALUE_GROUP in src/runtime/cache/quantizer.ts.
constexpr int kValueGroup = 32;

enum class QuantGrouping { kKeysPerChannel, kValuesPerTokenGroup };

inline size_t PackedBytes(size_t count, int bits) { return (count * static_cast<size_t>(bits) + 7) / 8; }

// (scale, zero) pairs: keys `channels` pairs, values `tokens * ceil(channels / kValueGroup)` pairs.
inline size_t ScaleZeroPairs(QuantGrouping grouping, size_t tokens, size_t channels) {
  return grouping == QuantGrouping::kKeysPerChannel ? channels : tokens * ((channels + kValueGroup - 1) / kValueGroup);
}

// Where one branch's features sit in the compressed pages (../engine/cacheLayout.h), for the device readers
// (pageFeatures.cuh).
struct PageFeatures {
  const uint8_t* pages = nullptr;  // [blocks, pageBytes]
  size_t pageBytes = 0;
  size_t dataOffset = 0;       // PageLayout.kData / vData
  size_t scaleZeroOffset = 0;  // PageLayout.kScaleZero / vScaleZero (unused at 16 bits)
  int bits = 16;
  bool keys = true;  // keys: one pair per feature; values: one per token and group of kValueGroup features
  int window = 1;
  int rank = 0;
};

}  // namespace cskv
