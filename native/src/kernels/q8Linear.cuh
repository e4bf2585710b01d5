// Linear layers over 8-bit blockwise weights (q8Layout.h): bf16 activations in, f32 accumulation and output.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "q8Layout.h"

namespace cskv {

// A q8 weight [n, k] on the device.
struct Q8Weight {
  const int8_t* codes = nullptr;  // [n, Q8BlocksPerRow(k) * 32]
  const float* scales = nullptr;  // [n, Q8BlocksPerRow(k)]
  size_t n = 0, k = 0;
};

// Decode: out[m, r] = beta * out[m, r] + sum_c x[m, c] * W[r, c] for m < rows <= kQ8GemvMaxRows. Memory-bound:
// each weight byte is read once (16 codes per lane per step, one warp per output row), the activations come
// from L1/L2. x is bf16 [rows, k] (row stride k); out is f32 [rows, n] (row stride n).
Status LaunchQ8Gemv(const uint16_t* x, size_t rows, const Q8Weight& w, float* out, float beta, cudaStream_t stream);

// Prefill: weight rows [first, first + count) dequantised to bf16 [count, k] (row stride k) for the GEMM.
Status LaunchQ8DequantiseRows(const Q8Weight& w, size_t first, size_t count, uint16_t* out, cudaStream_t stream);

// out[m, first + j] = beta * out[m, first + j] + tile[m, j], for a GEMM that computed one tile of output columns.
Status LaunchAddColumns(float* out, size_t outStride, const float* tile, size_t rows, size_t first, size_t count, float beta, cudaStream_t stream);

}  // namespace cskv
