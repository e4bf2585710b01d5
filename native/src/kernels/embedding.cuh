// Token embedding: out[t, :] = table[tokens[t], :], bf16 rows widened into the f32 residual stream.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"

namespace cskv {

// Token ids are checked against the vocabulary on the host before the launch.
Status LaunchEmbedding(const uint16_t* table, const int32_t* tokens, float* out, size_t count, size_t hidden, cudaStream_t stream);

}  // namespace cskv
