// RMSNorm over the last dimension: out[r, i] = x[r, i] / sqrt(mean_i(x[r, i]^2) + eps) * weight[i], computed in
// f32 whatever the storage type (x, weight and out share `type`).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../status.h"
#include "dtype.h"

namespace cskv {

Status LaunchRmsNorm(DType type, const void* x, const void* weight, void* out, size_t rows, size_t cols, float eps, cudaStream_t stream);

// The engine's form: the f32 residual stream in, bf16 weight, bf16 out (the next GEMM's input).
Status LaunchRmsNormToBf16(const float* x, const uint16_t* weight, uint16_t* out, size_t rows, size_t cols, float eps, cudaStream_t stream);

}  // namespace cskv
