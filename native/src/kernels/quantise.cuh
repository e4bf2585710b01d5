// The compressed branch's KIVI-style quantiser (src/runtime/cache/quantizer.ts, bit for bit): asymmetric min/max,
// keys with one (scale, zero) per channel over a block of tokens, values with one per token and group of
// kValueGroup channels. Scale and zero are fp16 and the codes are computed from those fp16 values; codes of 8, 4
// or 2 bits are packed little-end-first into bytes of the row-major [tokens, channels] order.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "quantLayout.h"

namespace cskv {

// rows: [tokens, channels] f32. codes: PackedBytes(tokens * channels, bits). scaleZero: 2 * pairs fp16 bit patterns.
Status LaunchQuantise(QuantGrouping grouping, const float* rows, size_t tokens, size_t channels, int bits, uint8_t* codes,
                      uint16_t* scaleZero, cudaStream_t stream);

// The inverse: out[t, c] = code * scale + zero, in f32.
Status LaunchDequantise(QuantGrouping grouping, const uint8_t* codes, const uint16_t* scaleZero, size_t tokens, size_t channels,
                        int bits, float* out, cudaStream_t stream);

}  // namespace cskv
