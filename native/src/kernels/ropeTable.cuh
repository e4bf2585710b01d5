// The cos/sin table the attention kernel rotates queries and cached (pre-RoPE) keys with:
//   table[p, i] = (cos(p f_i) * a, sin(p f_i) * a)   for p < positions, i < headDim / 2
// The angle is formed and reduced in double, as the runtime's tables are (src/runtime/model/rope.ts), so long
// positions keep their precision; the factor a is yarn's attention factor (1 otherwise).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"

namespace cskv {

// invFreq: device [half] doubles. table: device [positions, half, 2] floats.
Status LaunchRopeTable(const double* invFreq, double attentionFactor, float* table, int64_t positions, int half, cudaStream_t stream);

}  // namespace cskv
