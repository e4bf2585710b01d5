// Linear layers over 4-bit blockwise weights (q4Layout.h): bf16 activations in, f32 accumulation and output.
// The prefill path's column tiles reuse q8Linear.cuh's LaunchAddColumns.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "q4Layout.h"

namespace cskv {

// A q4 weight [n, k] on the device.
struct Q4Weight {
  const uint8_t* codes = nullptr;      // [n, Q4BlocksPerRow(k) * 16]
  const uint16_t* scaleMin = nullptr;  // f16 [n, Q4BlocksPerRow(k), 2]
  size_t n = 0, k = 0;
};

// Decode: out[m, r] = beta * out[m, r] + sum_c x[m, c] * W[r, c] for m < rows <= kQ4GemvMaxRows. One warp per
// output row, one block of 32 codes (16 bytes) per lane per step; x is bf16 [rows, k], out f32 [rows, n].
Status LaunchQ4Gemv(const uint16_t* x, size_t rows, const Q4Weight& w, float* out, float beta, cudaStream_t stream);

// Prefill: weight rows [first, first + count) dequantised to bf16 [count, k] (row stride k) for the GEMM.
Status LaunchQ4DequantiseRows(const Q4Weight& w, size_t first, size_t count, uint16_t* out, cudaStream_t stream);

}  // namespace cskv
