// Plain C++ float64 references of the q4 linear kernels (kernels/q4Linear.cuh), compiled in every build so the
// CPU tests can check them against the runtime's own quantiser and the GPU tests can check the kernels against
// them. Layout: kernels/q4Layout.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cskv {

// out[m, r] = (accumulate ? accumulate[m, r] : 0) + sum_c x[m, c] * W[r, c], in float64.
void Q4LinearReference(const float* x, size_t rows, const uint8_t* codes, const uint16_t* scaleMin, size_t n, size_t k, const float* accumulate,
                       double* out);

// W[r, c] = code * scale - min for r in [first, first + count), in float64 (out [count, k]).
void Q4DequantiseReference(const uint8_t* codes, const uint16_t* scaleMin, size_t k, size_t first, size_t count, double* out);

}  // namespace cskv
