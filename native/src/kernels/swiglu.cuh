// SwiGLU, the Llama/Qwen2 MLP's gate: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g), in f32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "dtype.h"

namespace cskv {

Status LaunchSwiglu(DType type, const void* gate, const void* up, void* out, size_t count, cudaStream_t stream);

// rows of [gate (inter) | up (inter)] f32 -> out [rows, inter] bf16.
Status LaunchSwigluRows(const float* gateUp, uint16_t* out, size_t rows, size_t inter, cudaStream_t stream);

}  // namespace cskv
