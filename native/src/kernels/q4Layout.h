// The CUDA engine's 4-bit blockwise weights (`--weights q4`), shared by host code that has no CUDA headers.
// A linear weight W [n, k] (as checkpoints store it: out × in) is held as
//   codes     uint8 [n, blocksPerRow * 16]    two codes a byte, channel 2i in the low nibble of byte i, 2i+1 in the
//                                             high one (the CPU engine's MatMulNBits packing); a partial last
//                                             block's padding codes meet activations of 0 and count for nothing
//   scaleMin  f16   [n, blocksPerRow, 2]      per block of 32 input channels (scale, min):
//                                             W[r, c] = code(r, c) * scale - min
// Why this layout (measured in test/native/cudaQ4Weights.test.ts and /work/notes/issue-11e.md):
// - One layout holds every source at 20 bytes per 32 weights (0.625 bytes a weight). GGUF Q4_0 lands exactly
//   (scale = d, min = 8d); GGUF Q4_K (what Q4_K_M files hold) keeps its codes and its per-sub-block d·sc and
//   dmin·m, rounded once to f16 (a relative 2^-11 of the scale; far below the 4-bit step, ~1/15 of the range);
//   weights quantised at load take the CPU engine's symmetric 4-bit blocks (blockQuantizer.ts, one quantiser for
//   both engines) with scale rounded to f16 and min = 8·scale, the same numbers as the CPU engine's up to that
//   rounding.
// - Keeping Q4_K super-blocks as stored (0.5625 bytes a weight, 10% less) would need a second layout and kernel
//   for Q4_0 and for every tensor quantised at load; requantising Q4_K into the CPU engine's symmetric blocks
//   would add a second 4-bit rounding (an error as large as the file's own).
// - f32 (scale, min) would make every source exact at 0.75 bytes a weight: +1.2 GB on a 7B model, the GPUs of
//   8-12 GB this format is for.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cskv {

constexpr int kQ4Block = 32;
constexpr int kQ4BlockBytes = kQ4Block / 2;

inline size_t Q4BlocksPerRow(size_t k) { return (k + kQ4Block - 1) / kQ4Block; }
inline size_t Q4CodeBytes(size_t n, size_t k) { return n * Q4BlocksPerRow(k) * kQ4BlockBytes; }
// f16 values (scale, min) per block.
inline size_t Q4ScaleMinCount(size_t n, size_t k) { return n * Q4BlocksPerRow(k) * 2; }

// As q8 (q8Layout.h): at most this many activation rows take the GEMV, more are dequantised tile by tile to bf16
// for the cuBLASLt GEMM, in the same tile (kQ8TileBytes).
constexpr int kQ4GemvMaxRows = 8;

}  // namespace cskv
