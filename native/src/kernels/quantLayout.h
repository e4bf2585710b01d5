// Sizes of a quantised block (quantise.cuh), shared by host code that has no CUDA headers.
#pragma once

#include <cstddef>

namespace cskv {

// Value channels sharing one (scale, zero) pair; VALUE_GROUP in src/runtime/cache/quantizer.ts.
constexpr int kValueGroup = 32;

enum class QuantGrouping { kKeysPerChannel, kValuesPerTokenGroup };

inline size_t PackedBytes(size_t count, int bits) { return (count * static_cast<size_t>(bits) + 7) / 8; }

// (scale, zero) pairs: keys `channels` pairs, values `tokens * ceil(channels / kValueGroup)` pairs.
inline size_t ScaleZeroPairs(QuantGrouping grouping, size_t tokens, size_t channels) {
  return grouping == QuantGrouping::kKeysPerChannel ? channels : tokens * ((channels + kValueGroup - 1) / kValueGroup);
}

}  // namespace cskv
