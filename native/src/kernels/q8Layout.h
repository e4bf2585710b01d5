// The CUDA engine's 8-bit blockwise weights (`--weights q8`), shared by host code that has no CUDA headers.
// A linear weight W [n, k] (as checkpoints store it: out × in) is held as
//   codes  int8  [n, blocksPerRow * 32]  two's complement, row-major; a partial last block is padded with code 0
//   scales f32   [n, blocksPerRow]       one per block of 32 input channels: W[r, c] = codes[r, c] * scales[r, c / 32]
// This is the CPU engine's block layout (src/runtime/onnx/blockQuantizer.ts, 8-bit) with the implicit zero
// point 128 removed (code ^ 0x80), so a Q8_0 GGUF tensor and a tensor quantised at load land bit for bit on the
// same numbers in both engines. Scales stay f32, as the CPU engine's: a bf16/f16 checkpoint quantised at load
// keeps its exact scale (f16 would add a second rounding, and underflows for blocks below ~1e-5 in magnitude),
// at 4 bytes per 32 weights (1.125 bytes a weight; f16 would be 1.0625).
#pragma once

#include <cstddef>
#include <cstdint>

namespace cskv {

constexpr int kQ8Block = 32;

inline size_t Q8BlocksPerRow(size_t k) { return (k + kQ8Block - 1) / kQ8Block; }
inline size_t Q8CodeBytes(size_t n, size_t k) { return n * Q8BlocksPerRow(k) * kQ8Block; }
inline size_t Q8ScaleBytes(size_t n, size_t k) { return n * Q8BlocksPerRow(k) * sizeof(float); }

// Rows of a q8 weight at most this many activation rows go through the GEMV (decode); more rows (prefill) are
// dequantised tile by tile into bf16 scratch for the cuBLASLt GEMM.
constexpr int kQ8GemvMaxRows = 8;
// The bf16 scratch one dequantised tile of weight rows may take.
constexpr size_t kQ8TileBytes = size_t{64} << 20;

}  // namespace cskv
