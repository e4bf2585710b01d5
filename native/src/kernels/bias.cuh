// Adds a bias row to every row of an f32 matrix (the GEMMs write without an epilogue).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "../status.h"

namespace cskv {

// rows[r, c] += bias[c] for c < cols; `stride` is the row length of `rows` (>= cols).
Status LaunchAddBias(float* rows, const float* bias, size_t count, size_t cols, size_t stride, cudaStream_t stream);

}  // namespace cskv
