// Token embedding: out[t, :] = table[tokens[t], :] into the f32 residual stream, from a bf16 table or (--weights q8)
// a q8 table (q8Layout.h), which a tied output head shares.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "q8Linear.cuh"

namespace cskv {

// Token ids are checked against the vocabulary on the host before the launch.
Status LaunchEmbedding(const uint16_t* table, const int32_t* tokens, float* out, size_t count, size_t hidden, cudaStream_t stream);
// The q8 table [vocab, hidden]: each value code * scale rounded to bf16, as the q8 prefill tiles dequantise it, so
// the residual stream starts where a bf16 engine on the same values starts.
Status LaunchEmbeddingQ8(const Q8Weight& table, const int32_t* tokens, float* out, size_t count, cudaStream_t stream);

}  // namespace cskv
