// Rotary position embedding applied to [tokens, heads, headDim] (transformers' rotate_half layout):
//   out[i]        = x[i] cos(p f_i) - x[i + d/2] sin(p f_i)
//   out[i + d/2]  = x[i + d/2] cos(p f_i) + x[i] sin(p f_i)      (cos and sin scaled by attentionFactor)
// Every scaling type (default, linear, dynamic, yarn, llama3) differs only in the frequencies f and the
// attention factor, which the runtime computes (src/runtime/model/rope.ts) and passes in; positions are per token,
// since cached keys are stored before RoPE and rotated at their current positions.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "dtype.h"

namespace cskv {

Status LaunchRope(DType type, const void* x, void* out, const int32_t* positions, const double* invFreq, float attentionFactor,
                  size_t tokens, size_t heads, size_t headDim, cudaStream_t stream);

}  // namespace cskv
