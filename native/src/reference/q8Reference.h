// Plain C++ float64 references of the q8 linear kernels (kernels/q8Linear.cuh), compiled in every build so the
// CPU tests can check them against the runtime's own quantiser and the GPU tests can check the kernels
// against them. Layout: kernels/q8Layout.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cskv {

// out[m, r] = (accumulate ? accumulate[m, r] : 0) + sum_c x[m, c] * codes[r, c] * scales[r, c / 32], in float64.
void Q8LinearReference(const float* x, size_t rows, const int8_t* codes, const float* scales, size_t n, size_t k, const float* accumulate,
                       double* out);

// W[r, c] = codes[r, c] * scales[r, c / 32] for r in [first, first + count), in float64 (out [count, k]).
void Q8DequantiseReference(const int8_t* codes, const float* scales, size_t k, size_t first, size_t count, double* out);

}  // namespace cskv
